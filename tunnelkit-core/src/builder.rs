//! Builders for the validated config types, for programs that embed tunnelkit: typed hosts,
//! users and ports instead of struct literals and option strings, with the defaults of a
//! captured [`Environment`] (its user, its `~/.ssh` files, its agent), checked when built.
//!
//! ```
//! use tunnelkit_core::{Environment, Forward, Hop, Target, TunnelConfig};
//!
//! # fn main() -> Result<(), tunnelkit_core::Error> {
//! let env = Environment::from_process(None, false);
//! let config = TunnelConfig::builder()
//!     .route("primary", [
//!         Hop::builder("gw.example.com").user("ops").build(&env)?,
//!         Hop::builder("bastion.example.com").user("admin").port(2222).build(&env)?,
//!     ])
//!     .route("dr", [Hop::builder("bastion.dr.example.com").build(&env)?])
//!     .forward(Forward::local(13389, Target::new("winserver", 3389)?))
//!     .build()?;
//! assert_eq!(config.routes.len(), 2);
//! # Ok(())
//! # }
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    defaults, Backoff, Failback, Forward, ForwardKind, Hop, HopOptions, Route, Target, TunnelConfig,
};
use crate::env::Environment;
use crate::error::Error;

impl TunnelConfig {
    /// A builder: add routes in priority order (the first is the primary) and forwards, then
    /// [`build`](TunnelConfigBuilder::build).
    pub fn builder() -> TunnelConfigBuilder {
        TunnelConfigBuilder {
            config: TunnelConfig::new(Vec::new(), Vec::new()),
        }
    }
}

/// Builds a [`TunnelConfig`]; see [`TunnelConfig::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct TunnelConfigBuilder {
    config: TunnelConfig,
}

impl TunnelConfigBuilder {
    /// Adds a route after those added so far: `hops` are the jump hosts first, the
    /// destination last.
    pub fn route(mut self, name: impl Into<String>, hops: impl IntoIterator<Item = Hop>) -> Self {
        self.config.routes.push(Route {
            name: name.into(),
            hops: hops.into_iter().collect(),
        });
        self
    }

    /// Adds a local forward.
    pub fn forward(mut self, forward: Forward) -> Self {
        self.config.forwards.push(forward);
        self
    }

    /// When to return to a higher-priority route (default: after it was healthy for
    /// [`defaults::FAILBACK`]).
    pub fn failback(mut self, failback: Failback) -> Self {
        self.config.failback = failback;
        self
    }

    /// How often higher-priority routes are probed while on a DR route.
    pub fn failback_probe_interval(mut self, every: Duration) -> Self {
        self.config.failback_probe_interval = every;
        self
    }

    /// How long a new connection waits for a route before it is closed.
    pub fn route_wait(mut self, wait: Duration) -> Self {
        self.config.route_wait = wait;
        self
    }

    /// The reconnect backoff once every route failed.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = backoff;
        self
    }

    /// Give up after this many rounds over all routes without one coming up (default: never).
    pub fn give_up_after_rounds(mut self, rounds: u32) -> Self {
        self.config.give_up_after_rounds = Some(rounds);
        self
    }

    /// The config, checked ([`TunnelConfig::validate`]): at least one route, every route with
    /// hops and a unique name, forwards' per-route targets naming routes that exist.
    pub fn build(self) -> Result<TunnelConfig, Error> {
        self.config.validate()?;
        Ok(self.config)
    }
}

impl Hop {
    /// A builder for a hop to `host` (a name or an address; port 22 unless set).
    pub fn builder(host: impl Into<String>) -> HopBuilder {
        HopBuilder {
            host: host.into(),
            user: None,
            port: 22,
            host_key_alias: None,
            options: None,
        }
    }
}

/// Builds a [`Hop`]; see [`Hop::builder`].
#[derive(Debug, Clone)]
#[must_use]
pub struct HopBuilder {
    host: String,
    user: Option<String>,
    port: u16,
    host_key_alias: Option<String>,
    options: Option<Arc<HopOptions>>,
}

impl HopBuilder {
    /// The login name (default: the environment's local user, as ssh).
    pub fn user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// The port (default 22).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Looks the host key up under this name in known_hosts (`HostKeyAlias`).
    pub fn host_key_alias(mut self, alias: impl Into<String>) -> Self {
        self.host_key_alias = Some(alias.into());
        self
    }

    /// Options for this hop (default: [`HopOptions::for_env`] of the environment given to
    /// [`build`](Self::build)). Share one `Arc` between hops that use the same options.
    pub fn options(mut self, options: Arc<HopOptions>) -> Self {
        self.options = Some(options);
        self
    }

    /// The hop, with `env`'s defaults for what was not set. Fails for an empty host or one
    /// with characters no host name has, an empty user, or port 0.
    pub fn build(self, env: &Environment) -> Result<Hop, Error> {
        crate::spec::check_host("hop", &self.host, &self.host)?;
        if self.port == 0 {
            return Err(Error::Config(format!("hop {}: port 0", self.host)));
        }
        let user = self.user.unwrap_or_else(|| env.local_user.clone());
        if user.is_empty() || user.contains(['@', '/']) || user.chars().any(char::is_control) {
            return Err(Error::Config(format!(
                "hop {}: invalid user name {user:?}",
                self.host
            )));
        }
        let options = self
            .options
            .unwrap_or_else(|| Arc::new(HopOptions::for_env(env)));
        let mut hop = Hop::new(user, self.host, self.port, options);
        hop.host_key_alias = self.host_key_alias;
        Ok(hop)
    }
}

impl Target {
    /// A forward's target, checked: a host name or address and a port from 1 to 65535.
    pub fn new(host: impl Into<String>, port: u16) -> Result<Target, Error> {
        let host = host.into();
        crate::spec::check_host("target", &host, &host)?;
        if port == 0 {
            return Err(Error::Config(format!("target {host}: port 0")));
        }
        Ok(Target { host, port })
    }
}

impl Forward {
    /// A local forward on `127.0.0.1:bind_port` (0 picks a free port) to `target`, with the
    /// default connection limit. Change `bind_host`, `max_connections` or the kind's
    /// `route_targets` on the value as needed.
    pub fn local(bind_port: u16, target: Target) -> Forward {
        Forward {
            bind_host: "127.0.0.1".into(),
            bind_port,
            kind: ForwardKind::local(target),
            max_connections: defaults::MAX_CONNECTIONS_PER_FORWARD,
        }
    }

    /// A SOCKS proxy (`ssh -D`) on `127.0.0.1:bind_port` (0 picks a free port), with the
    /// default connection limit: a [`ForwardKind::Dynamic`] forward. Its clients (a browser,
    /// `curl --socks5-hostname`) speak SOCKS5 without authentication, SOCKS4 or SOCKS4a and
    /// name their targets; each connection is one channel on the route in use, the name
    /// resolved by the route's last hop (see [`crate::socks`]). Change `bind_host` or
    /// `max_connections` on the value as needed; anyone who can reach the port can use the
    /// proxy, so keep it on loopback unless the network is yours.
    ///
    /// ```
    /// use tunnelkit_core::{Environment, Forward, ForwardKind, Hop, Target, TunnelConfig};
    ///
    /// # fn main() -> Result<(), tunnelkit_core::Error> {
    /// let env = Environment::from_process(None, false);
    /// let config = TunnelConfig::builder()
    ///     .route("primary", [Hop::builder("bastion.example.com").user("admin").build(&env)?])
    ///     // The web consoles of the site: browser proxy 127.0.0.1:1080, SOCKS v5, proxy DNS.
    ///     .forward(Forward::dynamic(1080))
    ///     // Next to a local forward, in the same tunnel.
    ///     .forward(Forward::local(13389, Target::new("winserver", 3389)?))
    ///     .build()?;
    /// assert_eq!(config.forwards[0].kind, ForwardKind::Dynamic);
    /// assert_eq!(config.forwards[0].bind_label(), "127.0.0.1:1080");
    /// assert_eq!(config.forwards[0].target_for("primary"), None, "its clients name targets");
    /// # Ok(())
    /// # }
    /// ```
    pub fn dynamic(bind_port: u16) -> Forward {
        Forward {
            bind_host: "127.0.0.1".into(),
            bind_port,
            kind: ForwardKind::Dynamic,
            max_connections: defaults::MAX_CONNECTIONS_PER_FORWARD,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Environment {
        Environment {
            local_user: "alice".into(),
            home: "/home/alice".into(),
            sources: Default::default(),
            shell: "/bin/sh".into(),
            interactive: false,
            agent_socket: Some("/run/agent.sock".into()),
        }
    }

    #[test]
    fn hops_take_the_environment_s_defaults() {
        let h = Hop::builder("bastion").build(&env()).unwrap();
        assert_eq!(h.label(), "alice@bastion:22");
        assert_eq!(h.options.auth.agent_socket, Some("/run/agent.sock".into()));
        assert_eq!(
            h.options.host_keys.user_files[0],
            std::path::PathBuf::from("/home/alice/.ssh/known_hosts")
        );
        let h = Hop::builder("::1")
            .user("ops")
            .port(2222)
            .build(&env())
            .unwrap();
        assert_eq!(h.label(), "ops@[::1]:2222");
    }

    #[test]
    fn bad_hops_and_targets_are_refused() {
        assert!(Hop::builder("").build(&env()).is_err());
        assert!(Hop::builder("a b").build(&env()).is_err());
        assert!(Hop::builder("-oProxyCommand=x").build(&env()).is_err());
        assert!(Hop::builder("h").port(0).build(&env()).is_err());
        assert!(Hop::builder("h").user("a@b").build(&env()).is_err());
        assert!(Target::new("winserver", 0).is_err());
        assert!(Target::new("win server", 3389).is_err());
    }

    #[test]
    fn build_validates_the_whole_config() {
        let hop = Hop::builder("b").build(&env()).unwrap();
        assert!(TunnelConfig::builder().build().is_err(), "no route");
        let twice = TunnelConfig::builder()
            .route("a", [hop.clone()])
            .route("a", [hop.clone()])
            .build();
        assert!(twice.is_err(), "two routes with one name");
        let c = TunnelConfig::builder()
            .route("primary", [hop])
            .forward(Forward::local(0, Target::new("vnc", 5901).unwrap()))
            .failback(Failback::Never)
            .build()
            .unwrap();
        assert_eq!(
            (c.forwards[0].bind_label(), c.failback),
            ("127.0.0.1:0".into(), Failback::Never)
        );
    }
}
