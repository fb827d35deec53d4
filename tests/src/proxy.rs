//! A TCP proxy in front of a server that can go silent (stop forwarding both ways without
//! closing anything: a black hole, no RST, no FIN) or die (close everything at once).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

struct Shared {
    silent: AtomicBool,
    stop: AtomicBool,
    sockets: Mutex<Vec<TcpStream>>,
}

/// The proxy. Stops on drop.
pub struct FaultProxy {
    addr: SocketAddr,
    target: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Mutex<Option<JoinHandle<()>>>,
}

impl FaultProxy {
    /// Starts a proxy on 127.0.0.1:0 forwarding to `target`.
    pub fn start(target: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let p = FaultProxy {
            addr,
            target,
            shared: Arc::new(Shared {
                silent: AtomicBool::new(false),
                stop: AtomicBool::new(false),
                sockets: Mutex::new(Vec::new()),
            }),
            acceptor: Mutex::new(None),
        };
        p.accept_on(listener);
        p
    }

    fn accept_on(&self, listener: TcpListener) {
        listener.set_nonblocking(true).expect("nonblocking");
        let shared = self.shared.clone();
        shared.stop.store(false, Ordering::SeqCst);
        let target = self.target;
        let t = std::thread::spawn(move || {
            while !shared.stop.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let _ = client.set_nonblocking(false);
                        if let Ok(server) = TcpStream::connect(target) {
                            pipe(&shared, client, server);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        if let Ok(mut a) = self.acceptor.lock() {
            *a = Some(t);
        }
    }

    /// The proxy's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Silent: nothing more is forwarded either way, on existing and new connections; nothing
    /// is closed.
    pub fn set_silent(&self, silent: bool) {
        self.shared.silent.store(silent, Ordering::SeqCst);
    }

    /// Stops accepting and closes every connection at once.
    pub fn kill(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.acceptor.lock().ok().and_then(|mut a| a.take()) {
            let _ = t.join();
        }
        if let Ok(mut socks) = self.shared.sockets.lock() {
            for s in socks.drain(..) {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
    }

    /// Accepts again on the same port, forwarding normally.
    pub fn restart(&self) {
        self.kill();
        self.set_silent(false);
        let mut listener = None;
        crate::wait_until(Duration::from_secs(10), "proxy port free again", || {
            listener = TcpListener::bind(self.addr).ok();
            listener.is_some()
        });
        if let Some(l) = listener {
            self.accept_on(l);
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.kill();
    }
}

fn pipe(shared: &Arc<Shared>, client: TcpStream, server: TcpStream) {
    let (Ok(c2), Ok(s2)) = (client.try_clone(), server.try_clone()) else {
        return;
    };
    if let Ok(mut socks) = shared.sockets.lock() {
        for s in [&client, &server] {
            if let Ok(c) = s.try_clone() {
                socks.push(c);
            }
        }
    }
    for (from, to) in [(client, s2), (server, c2)] {
        let shared = shared.clone();
        std::thread::spawn(move || copy(&shared, from, to));
    }
}

/// Copies until EOF or error; while silent, holds what it read and reads nothing more.
fn copy(shared: &Shared, mut from: TcpStream, mut to: TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        while shared.silent.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while shared.silent.load(Ordering::SeqCst) && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if shared.stop.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(Shutdown::Write);
}
