//! The metrics page as Prometheus text exposition format (version 0.0.4): a pure function of
//! the registry's status and what the event stream taught us ([`EventStats`]). Every family has
//! its `# HELP` and `# TYPE` line once, then its samples; label values are escaped (`\\`, `\"`,
//! `\n`).
//!
//! Keepalive round-trip time is not exported: the core does not measure it (a keepalive's
//! answer only proves the session alive); it is left out rather than reported as a guess.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use crate::status::{ProfileJson, ProfileState, RemoteForwardJson};

/// The states `tunnelkit_profile_state` has a sample for (one is 1, the others 0).
const STATES: [ProfileState; 10] = [
    ProfileState::Up,
    ProfileState::Connecting,
    ProfileState::Degraded,
    ProfileState::Partial,
    ProfileState::NeedsInput,
    ProfileState::Down,
    ProfileState::Stopping,
    ProfileState::Failed,
    ProfileState::Invalid,
    ProfileState::Refused,
];

/// What the metrics learn from a profile's events since the agent started (the status does
/// not keep these).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventStats {
    /// Failovers seen.
    pub failovers: u64,
    /// Failbacks seen.
    pub failbacks: u64,
    /// The last failover's time from detecting the failure to the new route being up (RTO).
    pub last_rto: Option<Duration>,
    /// When the last failover happened (Unix milliseconds).
    pub last_failover_unix_ms: Option<u64>,
}

/// Everything one page shows.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Every profile's status, by name.
    pub profiles: Vec<ProfileJson>,
    /// Per profile, what its events said.
    pub events: HashMap<String, EventStats>,
    /// Events the metrics' subscriber missed because it fell behind.
    pub events_missed: u64,
}

/// Escapes a label value: backslash, double quote and newline.
pub fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// One metric family being written.
struct Family<'a> {
    out: &'a mut String,
    name: &'static str,
}

impl<'a> Family<'a> {
    fn new(out: &'a mut String, name: &'static str, kind: &str, help: &str) -> Self {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    fn sample(&mut self, labels: &[(&str, &str)], value: impl std::fmt::Display) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", escape_label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// A profile-level family: name, help, and how to read its value.
type ProfileFamily = (
    &'static str,
    &'static str,
    fn(&ProfileJson, &EventStats) -> u64,
);
/// A forward-level family: name, type, help, and how to read its value.
type ForwardFamily = (
    &'static str,
    &'static str,
    &'static str,
    fn(&crate::status::ForwardJson) -> u64,
);

/// A duration in seconds, to the millisecond.
fn seconds(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

/// The page.
pub fn render(s: &Snapshot) -> String {
    let mut out = String::new();
    let none = EventStats::default();
    let stats = |p: &ProfileJson| s.events.get(&p.name).unwrap_or(&none);

    let mut f = Family::new(
        &mut out,
        "tunnelkit_profile_state",
        "gauge",
        "1 for the profile's current state, 0 for the others.",
    );
    for p in &s.profiles {
        for st in STATES {
            let v = u8::from(p.state == st);
            f.sample(&[("profile", &p.name), ("state", st.as_str())], v);
        }
    }
    let mut f = Family::new(
        &mut out,
        "tunnelkit_profile_route_info",
        "gauge",
        "The route carrying the profile's new connections (absent when none does).",
    );
    for p in &s.profiles {
        if let Some(r) = &p.route {
            f.sample(&[("profile", &p.name), ("route", r)], 1);
        }
    }
    let profile_counters: [ProfileFamily; 3] = [
        (
            "tunnelkit_profile_reconnects_total",
            "Sessions established after the first one since the tunnel started.",
            |p, _| p.reconnects,
        ),
        (
            "tunnelkit_profile_failovers_total",
            "Failovers to a lower-priority route since the tunnel started.",
            |p, _| p.failovers,
        ),
        (
            "tunnelkit_profile_failbacks_total",
            "Failbacks to a higher-priority route since the agent started.",
            |_, e| e.failbacks,
        ),
    ];
    for (name, help, value) in profile_counters {
        let mut f = Family::new(&mut out, name, "counter", help);
        for p in &s.profiles {
            f.sample(&[("profile", &p.name)], value(p, stats(p)));
        }
    }
    let mut f = Family::new(
        &mut out,
        "tunnelkit_profile_last_failover_rto_seconds",
        "gauge",
        "Time from detecting the failure to the new route being up, at the last failover.",
    );
    for p in &s.profiles {
        if let Some(rto) = stats(p).last_rto {
            f.sample(&[("profile", &p.name)], seconds(rto));
        }
    }
    let mut f = Family::new(
        &mut out,
        "tunnelkit_profile_last_failover_timestamp_seconds",
        "gauge",
        "Unix time of the last failover.",
    );
    for p in &s.profiles {
        if let Some(ms) = stats(p).last_failover_unix_ms {
            f.sample(
                &[("profile", &p.name)],
                format!("{:.3}", ms as f64 / 1000.0),
            );
        }
    }
    let forward_families: [ForwardFamily; 4] = [
        (
            "tunnelkit_forward_connections_open",
            "gauge",
            "Connections open now.",
            |f| f.active,
        ),
        (
            "tunnelkit_forward_connections_total",
            "counter",
            "Connections accepted since the tunnel started.",
            |f| f.total,
        ),
        (
            "tunnelkit_forward_bytes_in_total",
            "counter",
            "Bytes from the target to local clients since the tunnel started.",
            |f| f.bytes_in,
        ),
        (
            "tunnelkit_forward_bytes_out_total",
            "counter",
            "Bytes from local clients to the target since the tunnel started.",
            |f| f.bytes_out,
        ),
    ];
    for (name, kind, help, value) in forward_families {
        let mut f = Family::new(&mut out, name, kind, help);
        for p in &s.profiles {
            for (i, fw) in p.forwards.iter().enumerate() {
                let index = i.to_string();
                let labels = [
                    ("profile", p.name.as_str()),
                    ("forward", index.as_str()),
                    ("kind", fw.kind.as_str()),
                    ("local", fw.local.as_str()),
                    ("remote", fw.remote.as_str()),
                ];
                f.sample(&labels, value(fw));
            }
        }
    }
    remote_forwards(&mut out, &s.profiles);
    let mut f = Family::new(
        &mut out,
        "tunnelkit_metrics_events_missed_total",
        "counter",
        "Agent events the metrics missed because they fell behind (failover figures may lack some).",
    );
    f.sample(&[], s.events_missed);
    out
}

/// The states `tunnelkit_remote_forward_state` has a sample for (one is 1, the others 0).
const REMOTE_STATES: [&str; 4] = ["waiting", "requested", "active", "refused"];

/// The remote forwards (`[[remote]]`): each one's state, connections and bytes.
fn remote_forwards(out: &mut String, profiles: &[ProfileJson]) {
    let each = |out: &mut String, name, kind, help, value: fn(&RemoteForwardJson) -> u64| {
        let mut f = Family::new(out, name, kind, help);
        for p in profiles {
            for (i, r) in p.remote_forwards.iter().enumerate() {
                let index = i.to_string();
                let labels = remote_labels(p, &index, r);
                f.sample(&labels, value(r));
            }
        }
    };
    let mut f = Family::new(
        out,
        "tunnelkit_remote_forward_state",
        "gauge",
        "1 for the remote forward's current state (waiting, requested, active, refused), 0 for the others.",
    );
    for p in profiles {
        for (i, r) in p.remote_forwards.iter().enumerate() {
            let index = i.to_string();
            for st in REMOTE_STATES {
                let mut labels = remote_labels(p, &index, r).to_vec();
                labels.push(("state", st));
                f.sample(&labels, u8::from(r.state == st));
            }
        }
    }
    each(
        out,
        "tunnelkit_remote_forward_connections_total",
        "counter",
        "Connections the bastion sent through the remote forward since the tunnel started.",
        |r| r.total,
    );
    each(
        out,
        "tunnelkit_remote_forward_bytes_in_total",
        "counter",
        "Bytes from the target on this side to the bastion's clients since the tunnel started.",
        |r| r.bytes_in,
    );
    each(
        out,
        "tunnelkit_remote_forward_bytes_out_total",
        "counter",
        "Bytes from the bastion's clients to the target on this side since the tunnel started.",
        |r| r.bytes_out,
    );
}

fn remote_labels<'a>(
    p: &'a ProfileJson,
    index: &'a str,
    r: &'a RemoteForwardJson,
) -> [(&'static str, &'a str); 4] {
    [
        ("profile", p.name.as_str()),
        ("remote_forward", index),
        ("bind", r.bind.as_str()),
        ("target", r.target.as_str()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ForwardJson;
    use tunnelkit_core::ForwardType;

    fn profile(name: &str, state: ProfileState, route: Option<&str>) -> ProfileJson {
        ProfileJson {
            name: name.into(),
            state,
            route: route.map(str::to_string),
            since: None,
            description: String::new(),
            autostart: false,
            forwards: vec![],
            reconnects: 2,
            failovers: 1,
            last_error: None,
            remote_forwards: vec![],
            routes: vec![],
            shared_with: vec![],
        }
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape_label(r#"a\b"c"#), r#"a\\b\"c"#);
        assert_eq!(escape_label("two\nlines"), "two\\nlines");
        assert_eq!(escape_label("plain [::1]:80"), "plain [::1]:80");
    }

    #[test]
    fn every_family_has_help_and_type_once_and_samples_follow() {
        let mut db = profile("db", ProfileState::Degraded, Some("site-b"));
        db.forwards = vec![
            ForwardJson {
                kind: ForwardType::Local,
                local: "127.0.0.1:5432".into(),
                exposed: false,
                remote: "db.internal:5432".into(),
                active: 1,
                total: 7,
                bytes_in: 300,
                bytes_out: 40,
            },
            ForwardJson {
                kind: ForwardType::Dynamic,
                local: "127.0.0.1:1080".into(),
                exposed: false,
                remote: "socks".into(),
                active: 2,
                total: 9,
                bytes_in: 0,
                bytes_out: 0,
            },
        ];
        db.remote_forwards = vec![RemoteForwardJson {
            bind: "localhost:13389".into(),
            port: None,
            target: "127.0.0.1:3389".into(),
            route: Some("site-b".into()),
            state: "refused".into(),
            reason: Some("the bastion refused".into()),
            active: 0,
            total: 4,
            bytes_in: 10,
            bytes_out: 20,
        }];
        let mut events = HashMap::new();
        events.insert(
            "db".to_string(),
            EventStats {
                failovers: 1,
                failbacks: 3,
                last_rto: Some(Duration::from_millis(1234)),
                last_failover_unix_ms: Some(1_700_000_000_500),
            },
        );
        let page = render(&Snapshot {
            profiles: vec![db, profile("idle", ProfileState::Down, None)],
            events,
            events_missed: 0,
        });
        let lines: Vec<&str> = page.lines().collect();
        for want in [
            "tunnelkit_profile_state{profile=\"db\",state=\"degraded\"} 1",
            "tunnelkit_profile_state{profile=\"db\",state=\"up\"} 0",
            "tunnelkit_profile_state{profile=\"idle\",state=\"down\"} 1",
            "tunnelkit_profile_route_info{profile=\"db\",route=\"site-b\"} 1",
            "tunnelkit_profile_reconnects_total{profile=\"db\"} 2",
            "tunnelkit_profile_failovers_total{profile=\"idle\"} 1",
            "tunnelkit_profile_failbacks_total{profile=\"db\"} 3",
            "tunnelkit_profile_failbacks_total{profile=\"idle\"} 0",
            "tunnelkit_profile_last_failover_rto_seconds{profile=\"db\"} 1.234",
            "tunnelkit_profile_last_failover_timestamp_seconds{profile=\"db\"} 1700000000.500",
            "tunnelkit_forward_connections_open{profile=\"db\",forward=\"0\",kind=\"local\",local=\"127.0.0.1:5432\",remote=\"db.internal:5432\"} 1",
            "tunnelkit_forward_connections_total{profile=\"db\",forward=\"0\",kind=\"local\",local=\"127.0.0.1:5432\",remote=\"db.internal:5432\"} 7",
            "tunnelkit_forward_bytes_in_total{profile=\"db\",forward=\"0\",kind=\"local\",local=\"127.0.0.1:5432\",remote=\"db.internal:5432\"} 300",
            "tunnelkit_forward_bytes_out_total{profile=\"db\",forward=\"0\",kind=\"local\",local=\"127.0.0.1:5432\",remote=\"db.internal:5432\"} 40",
            "tunnelkit_forward_connections_open{profile=\"db\",forward=\"1\",kind=\"dynamic\",local=\"127.0.0.1:1080\",remote=\"socks\"} 2",
            "# TYPE tunnelkit_forward_bytes_in_total counter",
            "# TYPE tunnelkit_forward_connections_open gauge",
            "# HELP tunnelkit_profile_state 1 for the profile's current state, 0 for the others.",
            "tunnelkit_metrics_events_missed_total 0",
            "tunnelkit_remote_forward_state{profile=\"db\",remote_forward=\"0\",bind=\"localhost:13389\",target=\"127.0.0.1:3389\",state=\"refused\"} 1",
            "tunnelkit_remote_forward_state{profile=\"db\",remote_forward=\"0\",bind=\"localhost:13389\",target=\"127.0.0.1:3389\",state=\"active\"} 0",
            "tunnelkit_remote_forward_connections_total{profile=\"db\",remote_forward=\"0\",bind=\"localhost:13389\",target=\"127.0.0.1:3389\"} 4",
            "tunnelkit_remote_forward_bytes_out_total{profile=\"db\",remote_forward=\"0\",bind=\"localhost:13389\",target=\"127.0.0.1:3389\"} 20",
        ] {
            assert!(lines.contains(&want), "missing {want:?} in\n{page}");
        }
        // No route, no RTO: no sample rather than a made-up value.
        assert!(!page.contains("route_info{profile=\"idle\""), "{page}");
        assert!(!page.contains("rto_seconds{profile=\"idle\""), "{page}");
        // Each family: HELP then TYPE, once, before its samples.
        let mut seen = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            if let Some(rest) = l.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap();
                assert!(!seen.contains(&name), "{name} twice");
                seen.push(name);
                assert!(lines[i + 1].starts_with(&format!("# TYPE {name} ")));
            } else if !l.starts_with('#') {
                let name = l.split(['{', ' ']).next().unwrap();
                assert_eq!(Some(&name), seen.last(), "{l} outside its family");
            }
        }
        assert_eq!(seen.len(), 16);
        assert!(page.ends_with('\n'));
    }

    #[test]
    fn names_with_quotes_stay_one_sample() {
        let mut p = profile("odd\"name\\x", ProfileState::Up, Some("r\n1"));
        p.forwards = vec![];
        let page = render(&Snapshot {
            profiles: vec![p],
            ..Default::default()
        });
        assert!(
            page.contains(
                "tunnelkit_profile_route_info{profile=\"odd\\\"name\\\\x\",route=\"r\\n1\"} 1\n"
            ),
            "{page}"
        );
        assert!(page.lines().all(|l| !l.is_empty()));
    }
}
