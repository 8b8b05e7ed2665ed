//! The health endpoints over plain HTTP/1.1: a few threads, no async runtime.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::metrics::metrics;
use super::state::{Shared, health, lock};

/// Connections served at the same time; more are closed at once.
const MAX_CONNECTIONS: usize = 32;

/// Read and write timeout of one HTTP connection.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// The request head is read up to this many bytes; the rest is ignored.
const MAX_REQUEST_HEAD: usize = 8192;

/// An HTTP response: status, content type, body.
type Response = (u16, &'static str, String);

const TEXT: &str = "text/plain; charset=utf-8";
const PROMETHEUS: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The response to `method target`.
fn route(shared: &Shared, method: &str, target: &str, now: Instant) -> Response {
    if method != "GET" && method != "HEAD" {
        return (405, TEXT, "method not allowed: use GET\n".into());
    }
    let path = target.split(['?', '#']).next().unwrap_or("");
    let s = lock(&shared.state);
    match path {
        "/healthz" | "/livez" => match health(s.phase, now, shared.stuck_after) {
            Ok(()) => (200, TEXT, "ok\n".into()),
            Err(why) => (503, TEXT, format!("{why}\n")),
        },
        "/readyz" | "/ready" => (
            if s.ready { 200 } else { 503 },
            TEXT,
            format!("{}\n", s.message),
        ),
        "/metrics" => (200, PROMETHEUS, metrics(&s)),
        "/" => (
            200,
            TEXT,
            "model-signing watch mode: /healthz /readyz /ready /metrics\n".into(),
        ),
        _ => (404, TEXT, "not found\n".into()),
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Method and target of the request line, if the head has one.
fn request_line(head: &[u8]) -> Option<(&str, &str)> {
    let end = head.iter().position(|&b| b == b'\n')?;
    let line = std::str::from_utf8(&head[..end])
        .ok()?
        .trim_end_matches('\r');
    let mut parts = line.split(' ');
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    (parts.next().is_none() && version.starts_with("HTTP/") && target.starts_with('/'))
        .then_some((method, target))
}

fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_read_timeout(Some(IO_TIMEOUT));
    let _ = stream.set_write_timeout(Some(IO_TIMEOUT));
    let mut head = vec![0u8; MAX_REQUEST_HEAD];
    let mut len = 0;
    // Read the whole head: closing a socket with unread data would reset the connection and
    // could lose the response.
    while len < head.len() {
        match stream.read(&mut head[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if head[..len].windows(4).any(|w| w == b"\r\n\r\n")
                    || head[..len].windows(2).any(|w| w == b"\n\n")
                {
                    break;
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    if len == 0 {
        return; // a TCP probe or a client that gave up
    }
    let head = &head[..len];
    let (status, content_type, body, send_body) = match request_line(head) {
        Some((method, target)) => {
            let (status, ct, body) = route(shared, method, target, Instant::now());
            (status, ct, body, method != "HEAD")
        }
        None => (400, TEXT, "bad request\n".to_string(), true),
    };
    let allow = if status == 405 {
        "Allow: GET, HEAD\r\n"
    } else {
        ""
    };
    let response = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\n{allow}Connection: close\r\n\r\n{}",
        reason(status),
        body.len(),
        if send_body { body.as_str() } else { "" },
    );
    let _ = stream.write_all(response.as_bytes());
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Write);
}

/// Decrements the connection count when a connection's thread ends, however it ends.
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Accepts connections for ever, one thread each (at most [`MAX_CONNECTIONS`]).
pub fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(_) => {
                // Out of file descriptors and the like: back off instead of spinning.
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            continue; // dropped: closed at once
        }
        let slot = Slot(active.clone());
        let shared = shared.clone();
        // A failed spawn drops the closure, and with it the connection and the slot.
        let _ = std::thread::Builder::new()
            .name("http".into())
            .stack_size(128 << 10)
            .spawn(move || {
                let _slot = slot;
                serve_connection(stream, &shared);
            });
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::SystemTime;

    use super::*;
    use crate::watch::state::{Phase, State};

    fn shared(ready: bool, phase: Phase) -> Shared {
        Shared {
            state: Mutex::new(State {
                ready,
                message: "verification failed: 1 file changed: a.bin".into(),
                successes: 3,
                failures: 1,
                last_success: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_500)),
                last_duration: Some(Duration::from_millis(20)),
                phase,
            }),
            io: Mutex::new(()),
            stuck_after: Duration::from_secs(10),
        }
    }

    #[test]
    fn health_and_readiness() {
        let t0 = Instant::now();
        let s = shared(false, Phase::Checking { since: t0 });
        let at = |secs| t0 + Duration::from_secs(secs);
        assert_eq!(route(&s, "GET", "/healthz", at(5)).0, 200);
        let (code, _, body) = route(&s, "GET", "/healthz?verbose", at(11));
        assert_eq!(code, 503);
        assert!(body.contains("running for 11s"), "{body}");
        let (code, _, body) = route(&s, "GET", "/readyz", at(1));
        assert_eq!(
            (code, body.as_str()),
            (503, "verification failed: 1 file changed: a.bin\n")
        );
        assert_eq!(route(&s, "HEAD", "/ready", at(1)).0, 503);
        assert_eq!(route(&s, "GET", "/nope", at(1)).0, 404);
        assert_eq!(route(&s, "POST", "/readyz", at(1)).0, 405);
        let s = shared(true, Phase::Waiting { until: at(30) });
        assert_eq!(route(&s, "GET", "/readyz", at(1)).0, 200);
        assert_eq!(route(&s, "GET", "/healthz", at(80)).0, 200);
        assert_eq!(route(&s, "GET", "/healthz", at(91)).0, 503);
        let (code, ct, body) = route(&s, "GET", "/metrics", at(1));
        assert_eq!((code, ct), (200, PROMETHEUS));
        for line in [
            "# TYPE model_validation_agent_verifications_total counter",
            "model_validation_agent_verifications_total{result=\"success\"} 3",
            "model_validation_agent_verifications_total{result=\"failure\"} 1",
            "model_validation_agent_last_success_timestamp_seconds 1.500",
            "model_validation_agent_ready 1",
            "model_validation_agent_last_verification_duration_seconds 0.020000",
        ] {
            assert!(
                body.lines().any(|l| l == line),
                "{line} missing from\n{body}"
            );
        }
    }

    #[test]
    fn request_lines() {
        assert_eq!(
            request_line(b"GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(("GET", "/readyz"))
        );
        assert_eq!(request_line(b"GET /x HTTP/1.0\n\n"), Some(("GET", "/x")));
        for bad in [
            &b""[..],
            b"GET /readyz HTTP/1.1",
            b"GET\r\n",
            b"GET readyz HTTP/1.1\r\n",
            b"GET /a b HTTP/1.1\r\n",
            b"\xff\xfe /x HTTP/1.1\r\n",
            b"GET /x FTP\r\n",
        ] {
            assert_eq!(request_line(bad), None, "{bad:?}");
        }
    }
}
