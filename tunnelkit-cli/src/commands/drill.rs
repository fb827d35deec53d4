//! `tunnelkit drill NAME [--stay] [--json]`: asks the agent for a DR drill of a running profile
//! and prints one line per route and per forward, then where new connections go now. Exits 255
//! when the DR route did not carry every forward's test connection, saying why.

use tokio_util::sync::CancellationToken;
use tunnelkit_agent::protocol::{DrillJson, Request, Response};

use crate::commands::agent::call;
use crate::exit::Exit;
use crate::opts::DrillArgs;

/// Runs the drill and prints its report.
pub async fn run(args: &DrillArgs, cancel: &CancellationToken) -> Exit {
    let req = Request::Drill {
        name: args.name.clone(),
        stay: args.stay,
    };
    let report = match call(&args.socket, req, false, cancel).await {
        Ok(Response::Drill { report, .. }) => report,
        Ok(_) => DrillJson::not_run("", "the agent answered another question"),
        // With --json, a drill that could not run is a report too (not carried, and why), so
        // that a script reading the output always gets one object.
        Err(e) if args.json => DrillJson::not_run("", &e),
        Err(e) => {
            eprintln!("tunnelkit: {e}");
            return Exit::Failure;
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for line in lines(&report) {
            println!("{line}");
        }
    }
    if report.carried {
        Exit::Success
    } else {
        eprintln!("tunnelkit: drill {}: {}", args.name, why_not(&report));
        Exit::Failure
    }
}

/// Why the DR route did not carry the test, in one sentence.
pub fn why_not(r: &DrillJson) -> String {
    if let Some(e) = &r.error {
        if r.to.is_empty() {
            return e.clone();
        }
        return format!("the DR route {} cannot be brought up: {e}", r.to);
    }
    if untested(r) {
        return format!(
            "nothing was tested through the DR route {}: the profile's forwards are SOCKS \
             proxies, which have no target of their own (its session did come up); drill a \
             profile with a port forward to test the DR site",
            r.to
        );
    }
    let failed: Vec<String> = r
        .forwards
        .iter()
        .filter(|f| !f.reached && !f.skipped)
        .map(|f| {
            format!(
                "{} ({})",
                f.target,
                f.error.as_deref().unwrap_or("not reached")
            )
        })
        .collect();
    format!(
        "the DR route {} did not carry the test to {}",
        r.to,
        failed.join(", ")
    )
}

/// True when the DR session came up but no test connection was made: every forward is a SOCKS
/// proxy.
fn untested(r: &DrillJson) -> bool {
    r.error.is_none() && r.forwards.iter().all(|f| f.skipped)
}

/// The report as text: one line per route, one per forward, and where new connections go.
pub fn lines(r: &DrillJson) -> Vec<String> {
    let mut out = vec![format!("route   {:<16} in use before the drill", r.from)];
    let session = match (r.hot, r.connect_ms) {
        (true, _) => "hot standby, no handshake".to_string(),
        (false, Some(ms)) => format!("session up in {ms} ms"),
        (false, None) => "session could not be brought up".to_string(),
    };
    let verdict = match (r.carried, r.rto_ms) {
        (true, Some(rto)) => format!("CARRIED  RTO {rto} ms ({session})"),
        (true, None) => format!("CARRIED  nothing to measure ({session})"),
        _ if untested(r) => format!("UNTESTED  no forward to test through it ({session})"),
        _ => format!("NOT CARRIED ({session})"),
    };
    out.push(format!("route   {:<16} {verdict}", r.to));
    if let Some(e) = &r.error {
        out.push(format!("route   {:<16} {e}", r.to));
    }
    for f in &r.forwards {
        let what = match (f.reached, f.rto_ms, f.first_bytes) {
            _ if f.skipped => "not tested: a SOCKS proxy has no target of its own".to_string(),
            (true, Some(rto), Some(n)) => {
                format!("reached in {rto} ms, the target spoke first ({n} bytes)")
            }
            (true, Some(rto), None) => format!("reached in {rto} ms (channel open)"),
            _ => format!("NOT REACHED: {}", f.error.as_deref().unwrap_or("no answer")),
        };
        out.push(format!("forward {} -> {}  {what}", f.local, f.target));
    }
    out.push(format!("new connections use {}", r.back_on));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use tunnelkit_agent::protocol::DrillForwardJson;

    #[test]
    fn one_line_per_route_and_forward() {
        let mut r = DrillJson {
            from: "primary".into(),
            to: "dr".into(),
            carried: true,
            rto_ms: Some(63),
            hot: false,
            connect_ms: Some(41),
            forwards: vec![DrillForwardJson {
                local: "127.0.0.1:5901".into(),
                target: "vnc.dr:5901".into(),
                reached: true,
                rto_ms: Some(63),
                first_bytes: Some(12),
                error: None,
                skipped: false,
            }],
            back_on: "primary".into(),
            error: None,
        };
        assert_eq!(
            lines(&r),
            [
                "route   primary          in use before the drill",
                "route   dr               CARRIED  RTO 63 ms (session up in 41 ms)",
                "forward 127.0.0.1:5901 -> vnc.dr:5901  reached in 63 ms, the target spoke first (12 bytes)",
                "new connections use primary",
            ]
        );
        r.carried = false;
        r.forwards[0].reached = false;
        r.forwards[0].error = Some("connect failed".into());
        assert_eq!(
            why_not(&r),
            "the DR route dr did not carry the test to vnc.dr:5901 (connect failed)"
        );
        // A SOCKS proxy is not tested, and not counted as a failure.
        r.forwards.push(DrillForwardJson {
            local: "127.0.0.1:1080".into(),
            target: "socks".into(),
            reached: false,
            rto_ms: None,
            first_bytes: None,
            error: None,
            skipped: true,
        });
        assert_eq!(
            why_not(&r),
            "the DR route dr did not carry the test to vnc.dr:5901 (connect failed)"
        );
        assert_eq!(
            lines(&r)[3],
            "forward 127.0.0.1:1080 -> socks  not tested: a SOCKS proxy has no target of its own"
        );
        // SOCKS proxies alone: the session came up but nothing was tested, which is no pass.
        r.forwards.remove(0);
        r.carried = false;
        r.rto_ms = None;
        assert_eq!(
            lines(&r)[1],
            "route   dr               UNTESTED  no forward to test through it (session up in 41 ms)"
        );
        assert!(
            why_not(&r).starts_with("nothing was tested through the DR route dr: "),
            "{}",
            why_not(&r)
        );
    }

    #[test]
    fn a_drill_that_could_not_run_is_still_a_report_in_json() {
        let r = DrillJson::not_run("primary", "no DR route below primary to drill");
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["carried"], false);
        assert_eq!(v["error"], "no DR route below primary to drill");
        assert_eq!(v["from"], "primary");
        assert_eq!(why_not(&r), "no DR route below primary to drill");
    }
}
