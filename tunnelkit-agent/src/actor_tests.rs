//! The registry's rules with tunnels that behave as told (start, fail to bind, hang when
//! stopped), in paused tokio time: `status` never waits for a stop, a changed profile restarts
//! once its old tunnel is gone, a stopping profile shows `stopping`, a port taken shows
//! `failed` with the error in its log, a non-UTF-8 file is `invalid`.

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::broadcast;
use tunnelkit_core::{Event, RouteState, Status};

use crate::launcher::{LaunchError, Launcher, RunningTunnel, Stopping};
use crate::profile::Profile;
use crate::registry::{RegistryConfig, RegistryHandle, UpStarted, STOP_DEADLINE};
use crate::relay::Relay;
use crate::status::{ProfileJson, ProfileState};

/// Status must be answered within this (paused) time, whatever else is going on.
const ANSWER: Duration = Duration::from_millis(100);

struct FakeTunnel {
    hang_on_stop: bool,
    /// Up on `primary` before anyone could subscribe (a session shared with another profile).
    up_at_once: bool,
    events: broadcast::Sender<Event>,
    stops: Arc<AtomicUsize>,
}

impl RunningTunnel for FakeTunnel {
    fn status(&self) -> Status {
        Status {
            state: if self.up_at_once {
                RouteState::Up
            } else {
                RouteState::Connecting
            },
            route: self.up_at_once.then(|| "primary".to_string()),
            since: SystemTime::now(),
            reconnects: 0,
            failovers: 0,
            last_error: None,
            forwards: vec![],
            remote_forwards: vec![],
            routes: vec![],
            shared_session: None,
        }
    }

    fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    fn stop(self: Box<Self>) -> Stopping {
        self.stops.fetch_add(1, Ordering::SeqCst);
        let hang = self.hang_on_stop;
        Box::pin(async move {
            if hang {
                // A session that never answers and ignores its cancellation.
                std::future::pending::<()>().await;
            }
        })
    }
}

#[derive(Default)]
struct FakeLauncher {
    /// Profiles (by description) whose tunnel hangs when stopped.
    hang: Mutex<Vec<String>>,
    /// Profiles (by description) whose forward cannot be bound.
    taken: Mutex<Vec<String>>,
    /// Profiles (by description) whose tunnel is up before `launch` returns.
    up_at_once: Mutex<Vec<String>>,
    launches: AtomicUsize,
    stops: Arc<AtomicUsize>,
}

#[async_trait]
impl Launcher for FakeLauncher {
    async fn launch(
        &self,
        profile: &Profile,
        _relay: Arc<Relay>,
    ) -> Result<Box<dyn RunningTunnel>, LaunchError> {
        let d = &profile.description;
        if self.taken.lock().unwrap().contains(d) {
            return Err(LaunchError::Bind {
                forward: 0,
                error: tunnelkit_core::Error::Bind {
                    addr: "127.0.0.1:4000".into(),
                    reason: "Address already in use (os error 98)".into(),
                },
            });
        }
        self.launches.fetch_add(1, Ordering::SeqCst);
        let (events, _) = broadcast::channel(16);
        Ok(Box::new(FakeTunnel {
            hang_on_stop: self.hang.lock().unwrap().contains(d),
            up_at_once: self.up_at_once.lock().unwrap().contains(d),
            events,
            stops: self.stops.clone(),
        }))
    }
}

fn write(dir: &Path, name: &str, description: &str, autostart: bool) {
    let text = format!(
        "description = \"{description}\"\nautostart = {autostart}\n[[forward]]\nlocal = 0\n\
         remote = \"127.0.0.1:9\"\n[[route]]\nname = \"primary\"\nhops = [\"u@127.0.0.1:1\"]\n"
    );
    std::fs::write(dir.join(format!("{name}.toml")), text).unwrap();
}

fn registry(dir: &Path, launcher: Arc<FakeLauncher>) -> RegistryHandle {
    let config = RegistryConfig {
        dir: dir.to_path_buf(),
        local_user: "u".into(),
        // Only explicit reloads in these tests.
        poll: Duration::from_secs(3600),
    };
    RegistryHandle::spawn(config, launcher).0
}

async fn status_now(r: &RegistryHandle) -> Vec<ProfileJson> {
    tokio::time::timeout(ANSWER, r.status())
        .await
        .expect("status answered within 100 ms")
        .unwrap()
}

async fn state(r: &RegistryHandle, name: &str) -> ProfileJson {
    status_now(r)
        .await
        .into_iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no {name}"))
}

#[tokio::test(start_paused = true)]
async fn status_is_answered_while_a_reload_stops_a_hanging_profile() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(FakeLauncher::default());
    launcher.hang.lock().unwrap().push("v1".into());
    write(dir.path(), "stuck", "v1", true);
    write(dir.path(), "other", "o", true);
    let r = registry(dir.path(), launcher.clone());
    let first = r.reload().await.unwrap();
    assert_eq!(first.added, ["other", "stuck"]);
    assert_eq!(launcher.launches.load(Ordering::SeqCst), 2);
    let fresh = state(&r, "stuck").await;
    assert_eq!(fresh.state, ProfileState::Connecting);

    write(dir.path(), "stuck", "v2", true);
    let t = tokio::time::Instant::now();
    let summary = tokio::time::timeout(ANSWER, r.reload())
        .await
        .expect("the reload does not wait for the stop")
        .unwrap();
    assert_eq!(summary.to_string(), "changed stuck");
    assert_eq!(state(&r, "stuck").await.state, ProfileState::Stopping);
    assert_eq!(state(&r, "other").await.state, ProfileState::Connecting);
    assert_eq!(launcher.stops.load(Ordering::SeqCst), 1);
    // Other requests are served while it hangs.
    let other = r.down("other").await.unwrap();
    other.done.unwrap().await.unwrap();
    assert_eq!(state(&r, "other").await.state, ProfileState::Down);
    assert!(t.elapsed() < ANSWER, "{:?}", t.elapsed());
    assert!(r
        .logs("stuck")
        .await
        .unwrap()
        .last()
        .unwrap()
        .text
        .starts_with("stopping"));

    // After the stop deadline it counts as stopped, and the new configuration starts.
    tokio::time::sleep(STOP_DEADLINE + Duration::from_millis(10)).await;
    let after = state(&r, "stuck").await;
    assert_eq!(after.state, ProfileState::Connecting);
    assert_eq!(after.description, "v2");
    assert_eq!(launcher.launches.load(Ordering::SeqCst), 3);
    let log: Vec<String> = r
        .logs("stuck")
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.text)
        .collect();
    assert!(
        log.iter().any(|l| l.starts_with("not stopped after 3s")),
        "{log:?}"
    );
}

/// A tunnel that joins another profile's session is up before `up` could subscribe to its
/// events: `up` learns it from the status taken after subscribing (it used to wait 60 s for a
/// `RouteUp` that had gone by).
#[tokio::test(start_paused = true)]
async fn up_learns_a_route_that_came_up_before_it_subscribed() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(FakeLauncher::default());
    launcher.up_at_once.lock().unwrap().push("shared".into());
    write(dir.path(), "shared", "shared", false);
    write(dir.path(), "slow", "slow", false);
    let r = registry(dir.path(), launcher.clone());
    r.reload().await.unwrap();
    let Ok(UpStarted::Started(a)) = r.up("shared", false).await else {
        panic!("started");
    };
    assert_eq!(a.up_on.as_deref(), Some("primary"));
    assert_eq!(a.standby, None);
    let Ok(UpStarted::Started(a)) = r.up("slow", false).await else {
        panic!("started");
    };
    assert_eq!(a.up_on, None, "not up yet: `up` waits for its events");
}

#[tokio::test(start_paused = true)]
async fn down_answers_once_stopped_and_status_meanwhile_says_stopping() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(FakeLauncher::default());
    launcher.hang.lock().unwrap().push("h".into());
    write(dir.path(), "h", "h", false);
    let r = registry(dir.path(), launcher.clone());
    r.reload().await.unwrap();
    let never = state(&r, "h").await;
    assert_eq!(never.state, ProfileState::Down);
    assert_eq!(never.since, None, "never started: no since");
    assert!(matches!(
        r.up("h", false).await.unwrap(),
        UpStarted::Started(_)
    ));
    let down = r.down("h").await.unwrap();
    assert!(down.was_running);
    assert_eq!(state(&r, "h").await.state, ProfileState::Stopping);
    // `up` while it stops: started once the stop is over.
    let r2 = r.clone();
    let up = tokio::spawn(async move { r2.up("h", false).await });
    down.done.unwrap().await.unwrap();
    assert!(matches!(up.await.unwrap().unwrap(), UpStarted::Started(_)));
    assert_eq!(launcher.launches.load(Ordering::SeqCst), 2);
    let again = r.down("h").await.unwrap();
    again.done.unwrap().await.unwrap();
    let stopped = state(&r, "h").await;
    assert_eq!(stopped.state, ProfileState::Down);
    assert!(stopped.since.is_some());
    assert!(!r.down("h").await.unwrap().was_running);
}

#[tokio::test(start_paused = true)]
async fn a_taken_port_shows_failed_with_the_bind_error_in_status_and_logs() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(FakeLauncher::default());
    launcher.taken.lock().unwrap().push("busy".into());
    write(dir.path(), "busy", "busy", true);
    let r = registry(dir.path(), launcher.clone());
    r.reload().await.unwrap();
    let p = state(&r, "busy").await;
    assert_eq!(p.state, ProfileState::Failed);
    assert!(
        p.last_error
            .as_deref()
            .unwrap()
            .contains("Address already in use"),
        "{p:?}"
    );
    assert!(p.since.is_some());
    let log = r.logs("busy").await.unwrap();
    assert!(
        log[0]
            .text
            .starts_with("could not start: forward 0: bind 127.0.0.1:4000"),
        "{log:?}"
    );
    let up = r.up("busy", false).await;
    assert!(up.is_err_and(|e| e.to_string().contains("Address already in use")));
    // Freed: `up` starts it.
    launcher.taken.lock().unwrap().clear();
    assert!(matches!(
        r.up("busy", false).await.unwrap(),
        UpStarted::Started(_)
    ));
    assert_eq!(state(&r, "busy").await.last_error, None);
}

#[tokio::test(start_paused = true)]
async fn a_removed_file_shows_stopping_then_is_forgotten_and_broken_files_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(FakeLauncher::default());
    launcher.hang.lock().unwrap().push("gone".into());
    write(dir.path(), "gone", "gone", true);
    std::fs::write(
        dir.path().join("latin1.toml"),
        b"description = \"caf\xe9\"\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("typo.toml"), "autostrat = true\n").unwrap();
    let r = registry(dir.path(), launcher.clone());
    let s = r.reload().await.unwrap();
    assert_eq!(s.added, ["gone"]);
    let invalid: Vec<&str> = s.invalid.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(invalid, ["latin1", "typo"]);
    let latin1 = state(&r, "latin1").await;
    assert_eq!(latin1.state, ProfileState::Invalid);
    assert!(latin1
        .last_error
        .unwrap()
        .ends_with("latin1.toml:1:19: not UTF-8 text (profiles are UTF-8 TOML)"));
    assert!(s.to_string().contains("; invalid typo: "), "{s}");

    std::fs::remove_file(dir.path().join("gone.toml")).unwrap();
    let s = r.reload().await.unwrap();
    assert_eq!(s.removed, ["gone"]);
    assert_eq!(state(&r, "gone").await.state, ProfileState::Stopping);
    assert!(
        r.up("gone", false).await.is_err(),
        "a removed profile cannot be started"
    );
    tokio::time::sleep(STOP_DEADLINE + Duration::from_millis(10)).await;
    assert!(status_now(&r).await.iter().all(|p| p.name != "gone"));
    // Unchanged files are not touched by the next reload.
    assert_eq!(
        r.reload().await.unwrap().to_string().split(';').next(),
        Some("no changes")
    );
    r.shutdown().await;
    assert!(r.status().await.is_err(), "the registry has ended");
}

#[tokio::test(start_paused = true)]
async fn an_unchanged_directory_changes_nothing_and_a_same_size_edit_is_still_seen() {
    let dir = tempfile::tempdir().unwrap();
    let launcher = Arc::new(FakeLauncher::default());
    write(dir.path(), "a", "v1", true);
    write(dir.path(), "b", "b", false);
    let r = registry(dir.path(), launcher.clone());
    assert_eq!(r.reload().await.unwrap().added, ["a", "b"]);
    for _ in 0..3 {
        assert_eq!(r.reload().await.unwrap().to_string(), "no changes");
    }
    assert_eq!(launcher.launches.load(Ordering::SeqCst), 1);
    assert_eq!(launcher.stops.load(Ordering::SeqCst), 0);
    // The same number of bytes, one changed; then a new file next to the known ones.
    write(dir.path(), "a", "v2", true);
    assert_eq!(r.reload().await.unwrap().changed, ["a"]);
    write(dir.path(), "c", "c", false);
    assert_eq!(r.reload().await.unwrap().added, ["c"]);
    std::fs::remove_file(dir.path().join("b.toml")).unwrap();
    assert_eq!(r.reload().await.unwrap().removed, ["b"]);
    r.shutdown().await;
}
