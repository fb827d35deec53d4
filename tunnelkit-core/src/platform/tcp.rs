//! Socket tuning that only some systems have.

use tokio::net::TcpStream;

/// Asks the kernel to acknowledge what was just read at once (Linux's `TCP_QUICKACK`, which it
/// clears after each use, so this is called after every read). Elsewhere delayed ACKs are
/// left as the system has them: macOS and Windows have no per-read switch.
pub(crate) fn quick_ack(stream: &TcpStream) {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let _ = socket2::SockRef::from(stream).set_quickack(true);
    }
    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    let _ = stream;
}
