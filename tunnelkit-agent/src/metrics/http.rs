//! The metrics endpoint's HTTP, served by hyper's HTTP/1.1 connection (the one HTTP server of
//! every page the agent serves). One request per connection (no keep-alive, as a scrape needs no
//! more); the request head is bounded in size ([`MAX_REQUEST`]: hyper answers 431 past it) and
//! read time ([`REQUEST_DEADLINE`]: hyper closes the connection, without a 408), and the whole
//! connection in time ([`CONNECTION_DEADLINE`]). `GET /metrics` (a query string is ignored) is
//! answered with the page, `HEAD` with its head, any other path with 404, another method with
//! 405 (and `Allow`); a request hyper cannot parse gets hyper's 400. Deciding the answer is a
//! pure function (`route`) of the method and path.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, ALLOW, CONTENT_TYPE as CONTENT_TYPE_HEADER};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;
use tunnelkit_core::serve::Ticket;

/// A request head longer than this is refused with 431 (hyper's smallest read buffer).
pub const MAX_REQUEST: usize = 8 * 1024;
/// A client must send its request head within this time, or the connection is closed.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(5);
/// A connection ends after this long whatever it is doing: head, answer and its writing.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(15);
/// The media type of Prometheus text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route {
    /// `GET /metrics` (or `HEAD`: hyper sends the same head, no body).
    Metrics,
    /// An error status.
    Error(StatusCode),
}

/// Decides the answer from a request's method and path (the query string is not part of it).
pub(crate) fn route(method: &Method, path: &str) -> Route {
    match (method, path) {
        (&Method::GET | &Method::HEAD, "/metrics") => Route::Metrics,
        (&Method::GET | &Method::HEAD, _) => Route::Error(StatusCode::NOT_FOUND),
        _ => Route::Error(StatusCode::METHOD_NOT_ALLOWED),
    }
}

/// A whole answer: `body` with its media type (and `Allow` on a 405).
pub(crate) fn response(
    status: StatusCode,
    content_type: &str,
    body: String,
) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(CONTENT_TYPE_HEADER, v);
    }
    if status == StatusCode::METHOD_NOT_ALLOWED {
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
    }
    r
}

/// A plain-text error answer: the status's reason as the body.
pub(crate) fn error(status: StatusCode) -> Response<Full<Bytes>> {
    let reason = status.canonical_reason().unwrap_or("Error");
    response(status, "text/plain", format!("{reason}\n"))
}

/// Serves one connection with `answer` until it ends, [`CONNECTION_DEADLINE`] passes, or
/// `ticket` is shed (too many connections at once).
pub(crate) async fn serve_connection<F, Fut>(stream: TcpStream, ticket: &Ticket, answer: F)
where
    F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let fut = answer(req);
        async move { Ok::<_, Infallible>(fut.await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(REQUEST_DEADLINE)
        .max_buf_size(MAX_REQUEST)
        .keep_alive(false)
        .serve_connection(TokioIo::new(stream), service);
    match ticket.watch(CONNECTION_DEADLINE, conn).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!("metrics connection: {e}"),
        Err(e) => tracing::debug!("metrics connection: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_and_head_of_metrics_get_the_page() {
        let cases = [
            (Method::GET, "/metrics", Route::Metrics),
            (Method::HEAD, "/metrics", Route::Metrics),
            (Method::GET, "/", Route::Error(StatusCode::NOT_FOUND)),
            (
                Method::GET,
                "/metrics/x",
                Route::Error(StatusCode::NOT_FOUND),
            ),
            (
                Method::POST,
                "/metrics",
                Route::Error(StatusCode::METHOD_NOT_ALLOWED),
            ),
        ];
        for (method, path, want) in cases {
            assert_eq!(route(&method, path), want, "{method} {path}");
        }
    }

    /// Sends `request` to a connection served with [`route`] and a fixed page; the answer.
    async fn exchange(request: &[u8]) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        let pending = tunnelkit_core::serve::Pending::new(1, "test");
        let server = tokio::spawn(async move {
            let ticket = pending.enter();
            serve_connection(s, &ticket, |req: Request<Incoming>| async move {
                match route(req.method(), req.uri().path()) {
                    Route::Metrics => response(StatusCode::OK, CONTENT_TYPE, "a 1\n".into()),
                    Route::Error(status) => error(status),
                }
            })
            .await;
        });
        c.write_all(request).await.unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).await.unwrap();
        server.await.unwrap();
        String::from_utf8_lossy(&got).into_owned()
    }

    #[tokio::test]
    async fn hyper_answers_as_the_hand_written_responder_did() {
        let r = exchange(b"GET /metrics?name[]=up HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("content-length: 4\r\n") && r.ends_with("\r\n\r\na 1\n"),
            "{r}"
        );
        assert!(
            r.contains("connection: close\r\n"),
            "one request per connection: {r}"
        );
        let r = exchange(b"HEAD /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("content-length: 4\r\n") && r.ends_with("\r\n\r\n"),
            "{r}"
        );
        let r = exchange(b"GET / HTTP/1.0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.0 404 Not Found\r\n"), "{r}");
        let r = exchange(b"POST /metrics HTTP/1.1\r\ncontent-length: 0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 405 Method Not Allowed\r\n"), "{r}");
        assert!(r.contains("allow: GET, HEAD\r\n"), "{r}");
        let r = exchange(b"GET /metrics\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
        let r = exchange(b"\xff\xfe /metrics HTTP/1.1\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{r}");
        let huge = format!(
            "GET /metrics HTTP/1.1\r\nX: {}\r\n\r\n",
            "a".repeat(MAX_REQUEST + 10)
        );
        let r = exchange(huge.as_bytes()).await;
        assert!(
            r.starts_with("HTTP/1.1 431 Request Header Fields Too Large\r\n"),
            "{r}"
        );
    }

    #[test]
    fn a_405_says_what_is_allowed() {
        let r = error(StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(r.headers()[ALLOW], "GET, HEAD");
        assert_eq!(r.headers()[CONTENT_TYPE_HEADER], "text/plain");
    }
}
