//! Loopback ports and a plain HTTP/1.0 GET.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

/// Asks the kernel for a free loopback port. Another process could take it before the server
/// binds it; on loopback in tests that race is rare enough.
pub(crate) fn free_loopback_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A free loopback port (see [`free_loopback_port`] for the race); panics if there is none.
pub fn free_port() -> u16 {
    free_loopback_port().expect("finding a free loopback port")
}

/// The status code and body of an HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, e.g. 200.
    pub status: u16,
    /// The body, lossily decoded as UTF-8.
    pub body: String,
}

/// `GET path` on `127.0.0.1:port` over plain HTTP/1.0. `None` when nothing answers (connection
/// refused, timeout of 5 s, not HTTP): callers poll with it while a server starts.
pub fn http_get(port: u16, path: &str) -> Option<HttpResponse> {
    http_get_at(SocketAddr::from(([127, 0, 0, 1], port)), path)
}

/// [`http_get`] on any address, such as a pod's IP on the real node's bridge.
pub fn http_get_at(addr: SocketAddr, path: &str) -> Option<HttpResponse> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nhost: {}\r\n\r\n", addr.ip()).as_bytes())
        .ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    parse(&String::from_utf8_lossy(&raw))
}

fn parse(raw: &str) -> Option<HttpResponse> {
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let status_line = head.lines().next()?;
    if !status_line.starts_with("HTTP/") {
        return None;
    }
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    Some(HttpResponse {
        status,
        body: body.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_status_and_body() {
        let r = parse("HTTP/1.1 503 Service Unavailable\r\ncontent-length: 3\r\n\r\nbad").unwrap();
        assert_eq!((r.status, r.body.as_str()), (503, "bad"));
        assert_eq!(parse("garbage"), None);
    }

    #[test]
    fn nothing_listening_is_none() {
        let port = free_port();
        assert_eq!(http_get(port, "/"), None);
    }
}
