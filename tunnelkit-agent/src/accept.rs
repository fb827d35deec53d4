//! The accept step that the agent's two servers (the control socket and the metrics page)
//! share: the next connection, or nothing once the agent stops.

use std::future::Future;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// A pause after a failed `accept` (descriptors exhausted) before the next.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The next connection from `accept`; after a failed accept it logs the error (`what` names the
/// listener), pauses, and tries again. `None` once `cancel` fires, also during the pause.
pub(crate) async fn next_connection<T, F, Fut>(
    cancel: &CancellationToken,
    what: &str,
    mut accept: F,
) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::io::Result<T>>,
{
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return None,
            a = accept() => match a {
                Ok(conn) => return Some(conn),
                Err(e) => tracing::warn!("{what} accept: {e}"),
            },
        }
        tokio::select! {
            _ = cancel.cancelled() => return None,
            _ = tokio::time::sleep(ACCEPT_PAUSE) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[tokio::test(start_paused = true)]
    async fn a_connection_is_returned_after_failed_accepts_each_followed_by_the_pause() {
        let cancel = CancellationToken::new();
        let calls = Cell::new(0);
        let start = tokio::time::Instant::now();
        let got = next_connection(&cancel, "test", || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n < 3 {
                    Err(std::io::Error::other("EMFILE"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(got, Some(3));
        assert_eq!(start.elapsed(), ACCEPT_PAUSE * 2);
    }

    #[tokio::test(start_paused = true)]
    async fn stopping_during_the_pause_ends_it_at_once() {
        let cancel = CancellationToken::new();
        let start = tokio::time::Instant::now();
        let got: Option<()> = next_connection(&cancel, "test", || {
            // The agent stops while this accept fails.
            cancel.cancel();
            async { Err(std::io::Error::other("EMFILE")) }
        })
        .await;
        assert_eq!(got, None);
        assert_eq!(start.elapsed(), Duration::ZERO, "the pause was waited out");
    }
}
