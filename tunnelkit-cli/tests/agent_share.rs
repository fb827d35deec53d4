//! One login, many tunnels, in the agent: two profiles through the same bastion as the same
//! user share one SSH session (one sshd connection), and `status` says so.

mod agent_site;

use agent_site::*;
use tunnelkit_tests::blocking_echo as echo;

/// Two profiles to `s.sshd` as the same user, both autostarted: one connection to the bastion,
/// both carry bytes, each names the other in `shared_with` and the table says so; `down` of one
/// leaves the other working on the same session. Takes the site so that other bastions (one
/// asking for a one-time code) can reuse it.
pub fn assert_profiles_share_one_login(s: &Site) {
    let before = s.sshd.connections();
    write_profile(s, "rdp", true, 0);
    write_profile(s, "vnc", true, 0);
    let agent = Agent::start(s.dir.path(), &s.profiles, "mock");
    let rdp = agent.wait_state("rdp", "up");
    let vnc = agent.wait_state("vnc", "up");
    assert_eq!(echo(local_of(&rdp), b"rdp"), b"rdp");
    assert_eq!(echo(local_of(&vnc), b"vnc"), b"vnc");
    assert_eq!(s.sshd.connections() - before, 1, "{}", agent.log());
    assert_eq!(
        agent.profile("rdp")["shared_with"],
        serde_json::json!(["vnc"])
    );
    assert_eq!(
        agent.profile("vnc")["shared_with"],
        serde_json::json!(["rdp"])
    );
    let table = agent.cli(&["status"]);
    let text = String::from_utf8_lossy(&table.stdout);
    assert!(text.contains("one login shared with: vnc"), "{text}");
    assert!(text.contains("one login shared with: rdp"), "{text}");

    // `down` of one profile leaves the session to the other.
    let down = agent.cli(&["down", "vnc"]);
    assert!(down.status.success(), "{down:?}");
    agent.wait_state("vnc", "down");
    assert_eq!(echo(local_of(&rdp), b"still"), b"still");
    assert_eq!(s.sshd.connections() - before, 1, "{}", agent.log());
    assert!(agent.profile("rdp").get("shared_with").is_none());
    agent.stop();
}

#[tokio::test(flavor = "multi_thread")]
async fn two_profiles_to_one_bastion_log_in_once() {
    let s = site(None).await;
    assert_profiles_share_one_login(&s);
}
