//! What a tunnel forwards: local forwards (`-L`) and SOCKS proxies (`-D`) with their targets,
//! and remote forwards (`-R`), which the bastion listens for.

use super::defaults;

/// Where a forward's connections go: `host:port` as the route's last hop resolves it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host name or address.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", crate::spec::bracket(&self.host), self.port)
    }
}

/// What a forward does with a connection it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardKind {
    /// `-L`: every connection goes to one target (per route, when overridden).
    Local {
        /// The target on every route without an override.
        target: Target,
        /// Per-route targets: `(route name, target)`.
        route_targets: Vec<(String, Target)>,
    },
    /// `-D`: a SOCKS proxy (SOCKS5 with no authentication, SOCKS4, SOCKS4a); each connection
    /// goes where its client asks, names resolved by the route's last hop.
    Dynamic,
}

impl ForwardKind {
    /// A local forward to `target` on every route.
    pub fn local(target: Target) -> Self {
        ForwardKind::Local {
            target,
            route_targets: Vec::new(),
        }
    }

    /// Which kind this is, without its settings (what status shows).
    pub fn forward_type(&self) -> ForwardType {
        match self {
            ForwardKind::Local { .. } => ForwardType::Local,
            ForwardKind::Dynamic => ForwardType::Dynamic,
        }
    }
}

/// A local listener: a port forward (`-L`) or a SOCKS proxy (`-D`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// Local address to listen on, e.g. `127.0.0.1`.
    pub bind_host: String,
    /// Local port; 0 picks a free one.
    pub bind_port: u16,
    /// Where its connections go.
    pub kind: ForwardKind,
    /// Concurrent connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
}

impl Forward {
    /// A forward from a parsed `-L` spec, bound to loopback unless the spec names an address.
    pub fn from_spec(spec: &crate::spec::ForwardSpec) -> Self {
        let target = Target {
            host: spec.remote_host.clone(),
            port: spec.remote_port,
        };
        Self::bound(
            spec.bind_host.as_deref(),
            spec.bind_port,
            ForwardKind::local(target),
        )
    }

    /// A SOCKS proxy from a parsed `-D` spec, bound to loopback unless the spec names an
    /// address.
    pub fn from_dynamic_spec(spec: &crate::spec::DynamicSpec) -> Self {
        Self::bound(
            spec.bind_host.as_deref(),
            spec.bind_port,
            ForwardKind::Dynamic,
        )
    }

    /// A forward of `kind` on `bind_host:bind_port` (loopback when no address is given), with
    /// the default connection limit.
    fn bound(bind_host: Option<&str>, bind_port: u16, kind: ForwardKind) -> Self {
        Forward {
            bind_host: bind_host.unwrap_or("127.0.0.1").to_string(),
            bind_port,
            kind,
            max_connections: defaults::MAX_CONNECTIONS_PER_FORWARD,
        }
    }

    /// The target used when the given route carries the connection; `None` for a SOCKS
    /// proxy, whose clients name their targets.
    pub fn target_for(&self, route: &str) -> Option<&Target> {
        match &self.kind {
            ForwardKind::Local {
                target,
                route_targets,
            } => Some(
                route_targets
                    .iter()
                    .find(|(r, _)| r == route)
                    .map(|(_, t)| t)
                    .unwrap_or(target),
            ),
            ForwardKind::Dynamic => None,
        }
    }

    /// Where connections go, for messages and status: the target (`host:port`) of a local
    /// forward, `socks` for a SOCKS proxy.
    pub fn remote_label(&self) -> String {
        match &self.kind {
            ForwardKind::Local { target, .. } => target.to_string(),
            ForwardKind::Dynamic => "socks".to_string(),
        }
    }

    /// `bind_host:bind_port`, for messages.
    pub fn bind_label(&self) -> String {
        format!(
            "{}:{}",
            crate::spec::bracket(&self.bind_host),
            self.bind_port
        )
    }
}

/// The kind of a forward without its settings, as status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum ForwardType {
    /// A port forward to one target (`-L`).
    Local,
    /// A SOCKS proxy (`-D`): each connection goes where its client asks.
    Dynamic,
}

impl ForwardType {
    /// `local` or `dynamic`, as `tunnelkit status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            ForwardType::Local => "local",
            ForwardType::Dynamic => "dynamic",
        }
    }
}

impl std::fmt::Display for ForwardType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the bastion listens for a remote forward, as sent in `tcpip-forward`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteBind {
    /// `localhost` (the bastion's loopback, ssh's default), an empty string (every address, if
    /// the server's `GatewayPorts` allows it), or an address of the bastion.
    pub host: String,
    /// The port; 0 lets the bastion pick one (reported as allocated).
    pub port: u16,
}

impl RemoteBind {
    /// The bastion's loopback (`localhost`), as ssh binds a `-R` without a bind address.
    pub fn loopback(port: u16) -> Self {
        RemoteBind {
            host: "localhost".into(),
            port,
        }
    }
}

impl std::fmt::Display for RemoteBind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.host.as_str() {
            "" => write!(f, "*:{}", self.port),
            h => write!(f, "{}:{}", crate::spec::bracket(h), self.port),
        }
    }
}

/// A remote forward: the last hop of the route in use listens on [`bind`](Self::bind) (or the
/// route's own entry of [`route_binds`](Self::route_binds)), and its connections go to
/// [`target`](Self::target), which this side connects to. It exists on one route at a time:
/// the route that carries the tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteForward {
    /// Where the bastion listens on every route without an entry in `route_binds`.
    pub bind: RemoteBind,
    /// Per-route listen addresses: `(route name, bind)` (a DR bastion may need another address
    /// or port).
    pub route_binds: Vec<(String, RemoteBind)>,
    /// Host and port this side connects to for each connection.
    pub target: Target,
    /// Concurrent connections at most; further ones are refused (`resource shortage`).
    pub max_connections: usize,
}

impl RemoteForward {
    /// A remote forward from a parsed `-R` spec: the bastion's loopback unless the spec names
    /// an address.
    pub fn from_spec(spec: &crate::spec::RemoteForwardSpec) -> Self {
        RemoteForward {
            bind: RemoteBind {
                host: spec
                    .bind_host
                    .clone()
                    .unwrap_or_else(|| "localhost".to_string()),
                port: spec.bind_port,
            },
            route_binds: Vec::new(),
            target: Target {
                host: spec.target_host.clone(),
                port: spec.target_port,
            },
            max_connections: defaults::MAX_CONNECTIONS_PER_FORWARD,
        }
    }

    /// Where the bastion of `route` listens.
    pub fn bind_for(&self, route: &str) -> &RemoteBind {
        self.route_binds
            .iter()
            .find(|(r, _)| r == route)
            .map(|(_, b)| b)
            .unwrap_or(&self.bind)
    }
}
