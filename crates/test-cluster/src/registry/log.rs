//! The two registries' request logs, each line read as `METHOD URI STATUS`.

const METHODS: [&str; 6] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];

/// `oci-registry`: `2006/01/02 15:04:05 GET /v2/… 200` (Go's `log` with date and time). Its other
/// messages carry a prefix (`ggcr: `, `oci-registry: `), so they never match.
pub(super) fn oci_registry_line(line: &str) -> Option<String> {
    let rest = line.splitn(3, ' ').nth(2)?;
    let mut words = rest.split(' ');
    let (method, uri, status) = (words.next()?, words.next()?, words.next()?);
    request(method, uri, status, words.next().is_none())
}

/// distribution: the combined log format of its access log,
/// `127.0.0.1 - - [02/Jan/2006:15:04:05 +0000] "GET /v2/ HTTP/1.1" 200 2 "" "curl/8"`. Its
/// application log (`time=… level=info msg=…`) never has a quoted request followed by a status.
pub(super) fn access_log_line(line: &str) -> Option<String> {
    let (_, after_date) = line.split_once("] \"")?;
    let (request_line, after) = after_date.split_once("\" ")?;
    let mut words = request_line.split(' ');
    let (method, uri, proto) = (words.next()?, words.next()?, words.next()?);
    if !proto.starts_with("HTTP/") || words.next().is_some() {
        return None;
    }
    request(method, uri, after.split(' ').next()?, true)
}

fn request(method: &str, uri: &str, status: &str, complete: bool) -> Option<String> {
    let ok = complete
        && METHODS.contains(&method)
        && uri.starts_with('/')
        && status.len() == 3
        && status.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| format!("{method} {uri} {status}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oci_registry_requests_are_read_and_its_messages_skipped() {
        assert_eq!(
            oci_registry_line("2026/11/27 14:07:16 GET /v2/a/b/blobs/sha256:ab?x=1 200").as_deref(),
            Some("GET /v2/a/b/blobs/sha256:ab?x=1 200")
        );
        for noise in [
            "ggcr: 2026/11/27 14:07:16 GET /v2/a/manifests/x 404 MANIFEST_UNKNOWN Unknown manifest",
            "2026/11/27 14:07:16 oci-registry: listening on 127.0.0.1:1 (tls false, auth false)",
            "2026/11/27 14:07:16 GET /v2/",
        ] {
            assert_eq!(oci_registry_line(noise), None, "{noise}");
        }
    }

    #[test]
    fn distribution_access_log_is_read_and_its_app_log_skipped() {
        let line = r#"127.0.0.1 - - [27/Nov/2026:14:07:16 +0000] "PUT /v2/r/blobs/uploads/u?digest=sha256:ab HTTP/1.1" 201 0 "" "reqwest""#;
        assert_eq!(
            access_log_line(line).as_deref(),
            Some("PUT /v2/r/blobs/uploads/u?digest=sha256:ab 201")
        );
        let app = r#"time="2026-11-27T14:07:16Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/ http.response.status=200"#;
        assert_eq!(access_log_line(app), None);
        assert_eq!(access_log_line("garbage"), None);
    }
}
