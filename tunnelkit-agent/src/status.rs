//! What the agent reports: each profile's state and counters (`tunnelkit status`), its recent
//! events (`tunnelkit logs`) and what a reload changed (`tunnelkit reload`). These are the
//! typed payloads of the control protocol; `--json` prints them as they are. Stable: fields
//! are only added.

use std::fmt;

use serde::{Deserialize, Serialize};
use tunnelkit_core::{ForwardType, RouteState};

/// A profile's state as `tunnelkit status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileState {
    /// The primary route carries traffic.
    Up,
    /// Bringing a route up, or waiting between rounds of attempts.
    Connecting,
    /// A DR route carries traffic.
    Degraded,
    /// A route carries traffic, but the bastion refused one of the profile's remote forwards
    /// (`[[remote]]`): `last_error` names it and the bastion's answer. Requested again on a
    /// backoff while the route carries the tunnel.
    Partial,
    /// A route needs a passphrase, password or host key decision: run `tunnelkit up NAME`.
    NeedsInput,
    /// Not running.
    Down,
    /// Being stopped (its connections are ending); `down` once they have.
    Stopping,
    /// Could not start (a local port taken), or gave up.
    Failed,
    /// The file is broken; `last_error` says where and why.
    Invalid,
    /// The file, its directory or a file it names could have been written by another user
    /// (OpenSSH's StrictModes), so nothing from it is started; `last_error` names the path,
    /// its owner or mode, and the fix.
    Refused,
}

impl ProfileState {
    /// The state of a running tunnel.
    pub fn of_route(s: RouteState) -> ProfileState {
        match s {
            RouteState::Connecting | RouteState::Backoff => ProfileState::Connecting,
            RouteState::Up => ProfileState::Up,
            RouteState::Degraded => ProfileState::Degraded,
            RouteState::Stopped => ProfileState::Down,
            RouteState::Failed => ProfileState::Failed,
            RouteState::NeedsInput => ProfileState::NeedsInput,
            // RouteState is non-exhaustive; a state added later is still a state on the way.
            _ => ProfileState::Connecting,
        }
    }

    /// The lowercase word shown in the table.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileState::Up => "up",
            ProfileState::Connecting => "connecting",
            ProfileState::Degraded => "degraded",
            ProfileState::Partial => "partial",
            ProfileState::NeedsInput => "needs-input",
            ProfileState::Down => "down",
            ProfileState::Stopping => "stopping",
            ProfileState::Failed => "failed",
            ProfileState::Invalid => "invalid",
            ProfileState::Refused => "refused",
        }
    }
}

impl fmt::Display for ProfileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One forward in `tunnelkit status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardJson {
    /// `local` (a port forward) or `dynamic` (a SOCKS proxy).
    pub kind: ForwardType,
    /// Bound local address, or the configured one when not bound.
    pub local: String,
    /// Reachable from other machines: it listens on every interface (`*`, `0.0.0.0`, `::`) or
    /// on an address that is not loopback, so anyone who can reach it can use the tunnel.
    #[serde(default)]
    pub exposed: bool,
    /// `host:port` of the target; `socks` for a SOCKS proxy.
    pub remote: String,
    /// Connections open now.
    pub active: u64,
    /// Connections since the profile started.
    pub total: u64,
    /// Bytes from the target to local clients.
    pub bytes_in: u64,
    /// Bytes from local clients to the target.
    pub bytes_out: u64,
}

impl ForwardJson {
    /// How the table marks an exposed forward beside its address: `all interfaces` for a
    /// wildcard bind, `exposed` for another non-loopback address; `None` when loopback.
    pub fn exposure(&self) -> Option<&'static str> {
        if !self.exposed {
            return None;
        }
        let host = match self.local.rsplit_once(':') {
            Some((h, _)) => h.trim_start_matches('[').trim_end_matches(']'),
            None => self.local.as_str(),
        };
        let every = host == tunnelkit_core::spec::ALL_INTERFACES
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_unspecified());
        Some(if every { "all interfaces" } else { "exposed" })
    }
}

/// One remote forward (`[[remote]]`) in `tunnelkit status --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteForwardJson {
    /// Where the bastion is asked to listen (`localhost:13389`, `*:0`, ...).
    pub bind: String,
    /// The port the bastion listens on while active (the allocated one for port 0).
    pub port: Option<u16>,
    /// `host:port` of the target on this side.
    pub target: String,
    /// The route whose bastion carries it, if any.
    pub route: Option<String>,
    /// `waiting`, `requested`, `active` or `refused`.
    pub state: String,
    /// Why it was refused, while `refused`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Connections open now.
    pub active: u64,
    /// Connections since the profile started.
    pub total: u64,
    /// Bytes from the target to the bastion's clients.
    pub bytes_in: u64,
    /// Bytes from the bastion's clients to the target.
    pub bytes_out: u64,
}

/// One route of a profile in `tunnelkit status --json`: would a failover to it work?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteJson {
    /// Route name.
    pub name: String,
    /// True when it carries new connections.
    pub in_use: bool,
    /// `true`: the last background probe connected and authenticated (or it carries
    /// traffic); `false`: that probe failed (`last_error` says why); `null`: not probed yet,
    /// standby probes off, or the profile is not running.
    pub ready: Option<bool>,
    /// Unix time (seconds) of the last probe, or of the route coming up.
    pub last_probe: Option<u64>,
    /// Connect, handshake and authentication time of that probe, in milliseconds.
    pub probe_ms: Option<u64>,
    /// Why the last probe failed.
    pub last_error: Option<String>,
    /// An authenticated session is kept up for it (a hot standby): a failover to it needs no
    /// login, so no code from anyone.
    #[serde(default)]
    pub hot: bool,
    /// Its login waits for someone to answer a prompt (`tunnelkit up NAME` asks).
    #[serde(default)]
    pub needs_input: bool,
}

/// One profile in `tunnelkit status --json` (a list of these).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProfileJson {
    /// Profile name (file stem).
    pub name: String,
    /// The state.
    pub state: ProfileState,
    /// The route carrying new connections, if any.
    pub route: Option<String>,
    /// Unix time (seconds) when the state began; absent for a profile never started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<u64>,
    /// The profile's description.
    pub description: String,
    /// Starts with the agent.
    pub autostart: bool,
    /// Forwards, in profile order.
    pub forwards: Vec<ForwardJson>,
    /// Remote forwards, in profile order.
    #[serde(default)]
    pub remote_forwards: Vec<RemoteForwardJson>,
    /// Routes in priority order, with their readiness (standby probes).
    #[serde(default)]
    pub routes: Vec<RouteJson>,
    /// Sessions established after the first.
    pub reconnects: u64,
    /// Failovers to a lower-priority route.
    pub failovers: u64,
    /// The last error (for `invalid`: the file, line and column and what is wrong; for
    /// `refused`: the path, its owner or mode, and the fix).
    pub last_error: Option<String>,
    /// The other profiles whose tunnels use the same SSH session as this one (one login to
    /// the same route as the same user), by name; absent when none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
}

/// Fills each profile's [`ProfileJson::shared_with`]: `sessions[i]` is the pool id of the
/// session `profiles[i]` uses now (`None`: none, or one of its own).
pub fn mark_shared(profiles: &mut [ProfileJson], sessions: &[Option<u64>]) {
    let names: Vec<String> = profiles.iter().map(|p| p.name.clone()).collect();
    for (i, p) in profiles.iter_mut().enumerate() {
        let Some(Some(mine)) = sessions.get(i) else {
            continue;
        };
        p.shared_with = sessions
            .iter()
            .zip(&names)
            .enumerate()
            .filter(|(j, (id, _))| *j != i && **id == Some(*mine))
            .map(|(_, (_, n))| n.clone())
            .collect();
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before 1970): the time unit of the
/// protocol (`LogLine::unix_ms`).
pub fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// One line of `tunnelkit logs`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Unix time in milliseconds; the client shows it as local time (RFC 3339).
    pub unix_ms: u64,
    /// What happened.
    pub text: String,
}

/// A profile whose file is broken or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvalidProfile {
    /// Profile name.
    pub name: String,
    /// `file:line:column: why`, or `file: refused: why`.
    pub reason: String,
}

/// What a reload changed (`invalid`: every profile whose file is broken now).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReloadSummary {
    /// New profiles.
    pub added: Vec<String>,
    /// Profiles whose configuration changed (restarted if they were running).
    pub changed: Vec<String>,
    /// Profiles whose file is gone (stopped).
    pub removed: Vec<String>,
    /// Broken files; a profile that was running keeps its last good configuration.
    pub invalid: Vec<InvalidProfile>,
}

/// The sentence: `added a, changed b, removed c; invalid d: file:line: why`, or `no changes`.
impl fmt::Display for ReloadSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (verb, names) in [
            ("added", &self.added),
            ("changed", &self.changed),
            ("removed", &self.removed),
        ] {
            if !names.is_empty() {
                parts.push(format!("{verb} {}", names.join(", ")));
            }
        }
        let mut text = if parts.is_empty() {
            "no changes".to_string()
        } else {
            parts.join(", ")
        };
        for i in &self.invalid {
            text.push_str(&format!("; invalid {}: {}", i.name, i.reason));
        }
        f.write_str(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_reload_reads_as_a_sentence() {
        let s = ReloadSummary {
            added: names(&["a"]),
            changed: names(&["b", "b2"]),
            removed: names(&["c"]),
            invalid: vec![InvalidProfile {
                name: "d".into(),
                reason: "/p/d.toml:3:1: missing field `route`".into(),
            }],
        };
        assert_eq!(
            s.to_string(),
            "added a, changed b, b2, removed c; invalid d: /p/d.toml:3:1: missing field `route`"
        );
        assert_eq!(ReloadSummary::default().to_string(), "no changes");
        let only_invalid = ReloadSummary {
            invalid: s.invalid.clone(),
            ..Default::default()
        };
        assert!(only_invalid
            .to_string()
            .starts_with("no changes; invalid d: "));
    }

    /// A profile with nothing in it but its name and state.
    fn bare_profile(name: &str, state: ProfileState) -> ProfileJson {
        ProfileJson {
            name: name.to_string(),
            state,
            route: None,
            since: None,
            description: String::new(),
            autostart: false,
            forwards: vec![],
            remote_forwards: vec![],
            routes: vec![],
            reconnects: 0,
            failovers: 0,
            last_error: None,
            shared_with: vec![],
        }
    }

    #[test]
    fn profiles_on_one_pooled_session_name_each_other() {
        let mut list: Vec<ProfileJson> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| ProfileJson {
                route: Some("primary".into()),
                ..bare_profile(n, ProfileState::Up)
            })
            .collect();
        mark_shared(&mut list, &[Some(1), None, Some(1), Some(2), Some(1)]);
        let shared: Vec<Vec<String>> = list.iter().map(|p| p.shared_with.clone()).collect();
        assert_eq!(
            shared,
            vec![
                names(&["c", "e"]),
                names(&[]),
                names(&["a", "e"]),
                names(&[]),
                names(&["a", "c"]),
            ]
        );
        let v = serde_json::to_value(&list[0]).unwrap();
        assert_eq!(v["shared_with"], serde_json::json!(["c", "e"]));
        // A client from before the field reads a status without it.
        let mut old = v.clone();
        old.as_object_mut().unwrap().remove("shared_with");
        let back: ProfileJson = serde_json::from_value(old).unwrap();
        assert!(back.shared_with.is_empty());
    }

    #[test]
    fn since_is_absent_for_a_profile_never_started() {
        let p = bare_profile("n", ProfileState::Down);
        let v = serde_json::to_value(&p).unwrap();
        assert!(v.get("shared_with").is_none(), "{v}");
        assert!(v.get("since").is_none(), "{v}");
        assert_eq!(v["state"], "down");
        let back: ProfileJson = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        let json = serde_json::to_value(ProfileState::NeedsInput).unwrap();
        assert_eq!(json, "needs-input");
    }
}
