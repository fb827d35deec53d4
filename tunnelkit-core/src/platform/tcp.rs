//! Sockets: tuning that only some systems have, and errors each system names its own way.

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

/// True for the errors of a machine without IPv6 (module not loaded, or disabled): address
/// family or protocol not supported, address not available.
pub(crate) fn ipv6_unavailable(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    let codes = [
        rustix::io::Errno::AFNOSUPPORT,
        rustix::io::Errno::ADDRNOTAVAIL,
        rustix::io::Errno::PROTONOSUPPORT,
    ]
    .map(rustix::io::Errno::raw_os_error);
    // WSAEAFNOSUPPORT, WSAEADDRNOTAVAIL, WSAEPROTONOSUPPORT.
    #[cfg(windows)]
    let codes = [10047, 10049, 10043];
    e.raw_os_error().is_some_and(|c| codes.contains(&c))
}
