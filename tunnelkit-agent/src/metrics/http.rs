//! Just enough HTTP/1.1 for a Prometheus scrape: one request per connection, its head bounded
//! in size ([`MAX_REQUEST`]) and read time ([`REQUEST_DEADLINE`]); `GET /metrics` (a query
//! string is ignored) is answered with the page, any other path with 404, another method with
//! 405, anything malformed with 400; then the connection is closed. Deciding the answer is a
//! pure function ([`route`]) of the bytes read.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A request head longer than this is refused (431).
pub const MAX_REQUEST: usize = 8 * 1024;
/// A client must send its request head within this time.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// Writing the answer must finish within this time.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// The media type of Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /metrics` (or `HEAD`: the same head, no body).
    Metrics {
        /// Send the body.
        body: bool,
    },
    /// An error status and a one-line reason.
    Error(u16, &'static str),
}

/// Decides the answer from a complete request head.
pub(crate) fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::Error(400, "Bad Request");
    };
    let line = text.split("\r\n").next().unwrap_or_default();
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Route::Error(400, "Bad Request");
    };
    if !version.starts_with("HTTP/1.") || !target.starts_with('/') {
        return Route::Error(400, "Bad Request");
    }
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/metrics") => Route::Metrics { body: true },
        ("HEAD", "/metrics") => Route::Metrics { body: false },
        ("GET" | "HEAD", _) => Route::Error(404, "Not Found"),
        _ => Route::Error(405, "Method Not Allowed"),
    }
}

/// Reads a request head (up to the empty line) within the bounds; the error is the status to
/// answer with, or `None` to just close (the client went away).
pub(crate) async fn read_head<R: tokio::io::AsyncRead + Unpin>(
    r: &mut R,
) -> Result<Vec<u8>, Option<(u16, &'static str)>> {
    let mut buf = Vec::with_capacity(512);
    let read = async {
        let mut chunk = [0u8; 1024];
        loop {
            let n = r.read(&mut chunk).await.map_err(|_| None)?;
            if n == 0 {
                return Err(None);
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = find_end(&buf) {
                buf.truncate(end);
                return Ok(());
            }
            if buf.len() > MAX_REQUEST {
                return Err(Some((431, "Request Header Fields Too Large")));
            }
        }
    };
    match tokio::time::timeout(REQUEST_DEADLINE, read).await {
        Err(_) => Err(Some((408, "Request Timeout"))),
        Ok(Err(e)) => Err(e),
        Ok(Ok(())) => Ok(buf),
    }
}

/// Where the head ends (just after `\r\n\r\n`, or a bare `\n\n`).
fn find_end(buf: &[u8]) -> Option<usize> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The bytes of a whole answer.
pub(crate) fn response(
    status: u16,
    reason: &str,
    content_type: &str,
    body: &str,
    send_body: bool,
) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if status == 405 {
        out.push_str("Allow: GET, HEAD\r\n");
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if send_body {
        bytes.extend_from_slice(body.as_bytes());
    }
    bytes
}

/// Writes `bytes` within [`WRITE_DEADLINE`] and closes the sending side.
pub(crate) async fn send<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) {
    let write = async {
        w.write_all(bytes).await?;
        w.shutdown().await
    };
    let _ = tokio::time::timeout(WRITE_DEADLINE, write).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_metrics_gets_the_page() {
        let cases: [(&[u8], Route); 9] = [
            (
                b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                Route::Metrics { body: true },
            ),
            (
                b"GET /metrics?name[]=up HTTP/1.0\r\n\r\n",
                Route::Metrics { body: true },
            ),
            (
                b"HEAD /metrics HTTP/1.1\r\n\r\n",
                Route::Metrics { body: false },
            ),
            (b"GET / HTTP/1.1\r\n\r\n", Route::Error(404, "Not Found")),
            (
                b"GET /metrics/x HTTP/1.1\r\n\r\n",
                Route::Error(404, "Not Found"),
            ),
            (
                b"POST /metrics HTTP/1.1\r\n\r\n",
                Route::Error(405, "Method Not Allowed"),
            ),
            (b"GET /metrics\r\n\r\n", Route::Error(400, "Bad Request")),
            (
                b"GET metrics HTTP/1.1\r\n\r\n",
                Route::Error(400, "Bad Request"),
            ),
            (
                b"\xff\xfe /metrics HTTP/1.1\r\n\r\n",
                Route::Error(400, "Bad Request"),
            ),
        ];
        for (req, want) in cases {
            assert_eq!(route(req), want, "{}", String::from_utf8_lossy(req));
        }
    }

    #[tokio::test]
    async fn a_head_is_read_to_its_end_and_bounded() {
        let mut ok: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: a\r\n\r\nbody";
        let head = read_head(&mut ok).await.unwrap();
        assert!(head.ends_with(b"\r\n\r\n"));
        let huge = vec![b'a'; MAX_REQUEST + 10];
        assert_eq!(
            read_head(&mut huge.as_slice()).await,
            Err(Some((431, "Request Header Fields Too Large")))
        );
        let mut cut: &[u8] = b"GET /metrics HTTP/1.1\r\n";
        assert_eq!(read_head(&mut cut).await, Err(None));
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_client_gets_408_after_the_deadline() {
        let (_keep, mut server) = tokio::io::duplex(64);
        let started = tokio::time::Instant::now();
        assert_eq!(
            read_head(&mut server).await,
            Err(Some((408, "Request Timeout")))
        );
        assert_eq!(started.elapsed(), REQUEST_DEADLINE);
    }

    #[test]
    fn answers_say_their_length_and_close() {
        let r = String::from_utf8(response(200, "OK", CONTENT_TYPE, "a 1\n", true)).unwrap();
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(r.contains("Content-Length: 4\r\n") && r.contains("Connection: close\r\n"));
        assert!(r.ends_with("\r\n\r\na 1\n"));
        let head = String::from_utf8(response(200, "OK", CONTENT_TYPE, "a 1\n", false)).unwrap();
        assert!(head.ends_with("Content-Length: 4\r\nConnection: close\r\n\r\n"));
        let r =
            String::from_utf8(response(405, "Method Not Allowed", "text/plain", "", true)).unwrap();
        assert!(r.contains("Allow: GET, HEAD\r\n"));
    }
}
