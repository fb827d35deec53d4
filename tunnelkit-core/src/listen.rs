//! Binding a local listener's address as ssh does: a host or address as written, or
//! [`ALL_INTERFACES`] (`*`), every address of both families. ssh binds `0.0.0.0` and `::` as
//! two sockets; here one dual-stack socket on `::` (`IPV6_V6ONLY` off) takes both, so a port 0
//! listener has one port for both families. Where IPv6 is off, `0.0.0.0` alone.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;

use crate::spec::ALL_INTERFACES;

/// Binds `host:port`; `host` is [`ALL_INTERFACES`], an address or a name. Every listener gets
/// the backlog of [`crate::serve::LISTEN_BACKLOG`], so a burst of connections is absorbed.
pub(crate) async fn bind_local(host: &str, port: u16) -> std::io::Result<TcpListener> {
    if host != ALL_INTERFACES {
        return crate::serve::bind_tcp(host, port).await;
    }
    match bind_dual_stack(port) {
        Ok(l) => TcpListener::from_std(l),
        Err(e) if crate::platform::tcp::ipv6_unavailable(&e) => {
            crate::serve::bind_tcp_addr(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))
        }
        Err(e) => Err(e),
    }
}

fn bind_dual_stack(port: u16) -> std::io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::IPV6, Type::STREAM, Some(Protocol::TCP))?;
    socket.set_only_v6(false)?;
    // As tokio's bind does, so that a restarted tunnel can bind its port at once.
    socket.set_reuse_address(true)?;
    socket.bind(&SocketAddr::from((Ipv6Addr::UNSPECIFIED, port)).into())?;
    socket.listen(crate::serve::LISTEN_BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_interface_takes_both_families_on_one_port() {
        let l = bind_local(ALL_INTERFACES, 0).await.unwrap();
        let addr = l.local_addr().unwrap();
        assert!(addr.ip().is_unspecified(), "{addr}");
        let port = addr.port();
        tokio::net::TcpStream::connect((Ipv4Addr::LOCALHOST, port))
            .await
            .unwrap();
        if addr.is_ipv6() {
            tokio::net::TcpStream::connect((Ipv6Addr::LOCALHOST, port))
                .await
                .unwrap();
        }
        let lo = bind_local("127.0.0.1", 0).await.unwrap();
        assert!(lo.local_addr().unwrap().ip().is_loopback());
    }
}
