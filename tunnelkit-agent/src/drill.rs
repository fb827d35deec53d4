//! `tunnelkit drill NAME`: the report of a DR drill as the control protocol carries it
//! ([`DrillJson`]), made from the core's [`DrillReport`] or from the reason the DR route could
//! not be brought up. `--json` prints it as it is. Stable: fields are only added.

use serde::{Deserialize, Serialize};
use tunnelkit_core::{DrillError, DrillReport, ForwardOutcome};

/// One forward's test connection through the DR route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillForwardJson {
    /// The forward's local address.
    pub local: String,
    /// Its target as the DR route resolves it; `socks` for a SOCKS proxy.
    pub target: String,
    /// The DR route carried the test connection (the channel opened).
    pub reached: bool,
    /// Milliseconds from the switch to this working connection: the measured RTO.
    pub rto_ms: Option<u64>,
    /// Bytes the target sent first (targets that speak first, like VNC); `null` when it waits
    /// for its client.
    pub first_bytes: Option<usize>,
    /// Why it was not carried.
    pub error: Option<String>,
    /// Not tested: a SOCKS proxy has no target of its own (`reached` is then false and
    /// `error` null; it does not count against `carried`).
    #[serde(default)]
    pub skipped: bool,
}

/// What `tunnelkit drill` showed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillJson {
    /// The route carrying new connections before the drill.
    pub from: String,
    /// The DR route drilled; empty when the drill did not run (`error` says why).
    pub to: String,
    /// The DR route carried every test connection (SOCKS proxies are not tested).
    pub carried: bool,
    /// The measured RTO (the slowest tested forward's), when it carried every one; `null`
    /// also when nothing was tested.
    pub rto_ms: Option<u64>,
    /// The DR session was a hot standby: no handshake was needed.
    pub hot: bool,
    /// Milliseconds to bring the DR session up (0 for a hot standby); `null` when it could not.
    pub connect_ms: Option<u64>,
    /// Every forward's test connection.
    pub forwards: Vec<DrillForwardJson>,
    /// The route carrying new connections after the drill.
    pub back_on: String,
    /// Why the DR route could not be brought up (then `forwards` is empty).
    pub error: Option<String>,
}

fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl DrillJson {
    /// The report of a drill that ran; `locals` names each forward's local address.
    pub fn from_report(r: &DrillReport, locals: &[String]) -> DrillJson {
        DrillJson {
            from: r.from.clone(),
            to: r.to.clone(),
            carried: r.carried(),
            rto_ms: r.rto().map(ms),
            hot: r.hot,
            connect_ms: Some(ms(r.connect)),
            forwards: r
                .forwards
                .iter()
                .map(|f| {
                    let local = locals.get(f.forward).cloned().unwrap_or_default();
                    let target = f.target.clone();
                    match &f.outcome {
                        ForwardOutcome::Reached { rto, first_bytes } => DrillForwardJson {
                            local,
                            target,
                            reached: true,
                            rto_ms: Some(ms(*rto)),
                            first_bytes: *first_bytes,
                            error: None,
                            skipped: false,
                        },
                        ForwardOutcome::Failed { reason } => DrillForwardJson {
                            local,
                            target,
                            reached: false,
                            rto_ms: None,
                            first_bytes: None,
                            error: Some(reason.clone()),
                            skipped: false,
                        },
                        ForwardOutcome::Skipped => DrillForwardJson {
                            local,
                            target,
                            reached: false,
                            rto_ms: None,
                            first_bytes: None,
                            error: None,
                            skipped: true,
                        },
                        other => DrillForwardJson {
                            local,
                            target,
                            reached: false,
                            rto_ms: None,
                            first_bytes: None,
                            error: Some(format!("{other:?}")),
                            skipped: false,
                        },
                    }
                })
                .collect(),
            back_on: r.back_on.clone(),
            error: None,
        }
    }

    /// A drill whose DR route could not be brought up (`Some`), or `None` for errors that
    /// mean there was nothing to drill (the caller reports those as errors, or as
    /// [`DrillJson::not_run`]).
    pub fn from_error(e: &DrillError, from: Option<&str>) -> Option<DrillJson> {
        match e {
            DrillError::RouteDown { route, reason, .. } => Some(DrillJson {
                to: route.clone(),
                error: Some(reason.clone()),
                ..DrillJson::not_run(from.unwrap_or_default(), "")
            }),
            _ => None,
        }
    }

    /// The report of a drill that did not run (no DR route, the profile not up, the agent not
    /// reachable): not carried, `to` empty, `error` saying why.
    pub fn not_run(from: &str, why: &str) -> DrillJson {
        DrillJson {
            from: from.to_string(),
            to: String::new(),
            carried: false,
            rto_ms: None,
            hot: false,
            connect_ms: None,
            forwards: Vec::new(),
            back_on: from.to_string(),
            error: Some(why.to_string()),
        }
    }
}
