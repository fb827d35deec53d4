//! The parts of a profile's local listeners that `[[forward]]` and `[[dynamic]]` share: the
//! local address and the connection cap; and `[[dynamic]]` itself, a SOCKS proxy (`ssh -D`).

use serde::Deserialize;
use toml::Spanned;
use tunnelkit_core::{defaults, spec, Forward, ForwardKind};

use super::{Ctx, ProfileError};

/// One `[[dynamic]]`: a SOCKS proxy (SOCKS5 without authentication, SOCKS4, SOCKS4a) whose
/// connections go where each client asks, names resolved by the route's last hop.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDynamic {
    /// `port`, `host:port` or `[v6]:port`; a bare port means 127.0.0.1.
    pub local: Spanned<toml::Value>,
    /// Concurrent connections at most.
    #[serde(default)]
    pub max_connections: Option<Spanned<u64>>,
}

/// `local = PORT | "host:port"`: the bind address (`None`: loopback) and port.
pub(super) fn local_address(
    cx: &Ctx<'_>,
    local: &Spanned<toml::Value>,
) -> Result<(Option<String>, u16), ProfileError> {
    let text = match local.get_ref() {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        _ => return Err(cx.err(local.span(), "local: expected a port or \"host:port\"")),
    };
    spec::parse_listen(&text).map_err(|e| cx.err(local.span(), e.to_string()))
}

/// `max_connections`, at least 1; the default when absent.
pub(super) fn max_connections(
    cx: &Ctx<'_>,
    m: &Option<Spanned<u64>>,
) -> Result<usize, ProfileError> {
    match m {
        None => Ok(defaults::MAX_CONNECTIONS_PER_FORWARD),
        Some(m) if *m.get_ref() == 0 => {
            Err(cx.err(m.span(), "max_connections: expected at least 1"))
        }
        Some(m) => Ok(usize::try_from(*m.get_ref()).unwrap_or(usize::MAX)),
    }
}

/// The SOCKS proxy a `[[dynamic]]` describes.
pub(super) fn dynamic(cx: &Ctx<'_>, d: &RawDynamic) -> Result<Forward, ProfileError> {
    let (bind, port) = local_address(cx, &d.local)?;
    Ok(Forward {
        bind_host: bind.unwrap_or_else(|| "127.0.0.1".into()),
        bind_port: port,
        kind: ForwardKind::Dynamic,
        max_connections: max_connections(cx, &d.max_connections)?,
    })
}
