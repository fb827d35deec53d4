//! Reloading: the directory read on a blocking thread, then applied (changed files parsed,
//! diffed, and only what changed started, restarted or stopped).

use std::collections::BTreeMap;

use tokio::sync::oneshot;

use super::{refuse_waiters, Actor, Internal};
use crate::diff::{diff, Loaded};
use crate::events::{AgentEvent, ProfileLog};
use crate::launcher::profile_span;
use crate::profile::{self, Profile};
use crate::scan::{read_dir_blocking, ProfileFile, Scanned, Unusable};
use crate::slot::{Run, Slot, Then};
use crate::status::{InvalidProfile, ReloadSummary};
use crate::trust::named_files_refusal;

impl Actor {
    pub(super) fn begin_scan(&mut self, waiter: Option<oneshot::Sender<ReloadSummary>>) {
        self.queued.extend(waiter);
        if self.scanning.is_some() {
            return;
        }
        self.scanning = Some(std::mem::take(&mut self.queued));
        let dir = self.config.dir.clone();
        let report = self.internal.clone();
        tokio::spawn(async move {
            let scanned = tokio::task::spawn_blocking(move || read_dir_blocking(&dir))
                .await
                .unwrap_or_else(|e| Scanned {
                    dir_error: Some(format!("reading the profiles directory failed: {e}")),
                    ..Default::default()
                });
            let _ = report.send(Internal::Scanned(scanned));
        });
    }

    pub(super) async fn scanned(&mut self, scanned: Scanned) {
        let summary = self.apply(scanned).await;
        for w in self.scanning.take().unwrap_or_default() {
            let _ = w.send(summary.clone());
        }
        if !self.queued.is_empty() {
            self.begin_scan(None);
        }
    }

    /// Applies what the directory holds now: parses changed files, diffs, and starts,
    /// restarts or stops just what changed.
    async fn apply(&mut self, scanned: Scanned) -> ReloadSummary {
        if let Some(e) = scanned.dir_error {
            if self.last_dir_error.as_ref() != Some(&e) {
                tracing::warn!("{e}; the profiles stay as they are");
            }
            self.last_dir_error = Some(e);
            return self.summary(Vec::new(), Vec::new(), Vec::new());
        }
        self.last_dir_error = None;
        if self.unchanged(&scanned) {
            return self.summary(Vec::new(), Vec::new(), Vec::new());
        }
        let mut new: BTreeMap<String, Loaded<Profile>> = BTreeMap::new();
        let mut files: BTreeMap<String, ProfileFile> = BTreeMap::new();
        for (name, file) in scanned.files {
            let known = self.slots.get(&name).filter(|s| !s.removed);
            let loaded = match known {
                Some(s) if s.text.as_ref() == Some(&file.text) => s.loaded.clone(),
                _ => {
                    let loaded = self.parse(&file);
                    if let Some(reason) = loaded.problem() {
                        profile_span(&name).in_scope(|| tracing::error!("{reason}"));
                    }
                    loaded
                }
            };
            new.insert(name.clone(), loaded);
            files.insert(name, file);
        }
        let d = {
            let old: BTreeMap<String, Option<&Profile>> = self
                .slots
                .iter()
                .filter(|(_, s)| !s.removed)
                .map(|(n, s)| (n.clone(), s.good.as_ref()))
                .collect();
            diff(&old, &new)
        };
        for (name, loaded) in new {
            let Some(file) = files.remove(&name) else {
                continue;
            };
            let log = ProfileLog::new(&name, self.events.clone());
            let slot = self
                .slots
                .entry(name.clone())
                .or_insert_with(|| Slot::new(file.path.clone(), log));
            let text_changed = slot.text.as_ref() != Some(&file.text);
            slot.path = file.path;
            slot.text = Some(file.text);
            match &loaded {
                Loaded::Valid(p) => {
                    slot.good = Some(p.clone());
                }
                Loaded::Invalid(reason) if text_changed => slot.log.record(AgentEvent::Invalid {
                    reason: reason.clone(),
                }),
                Loaded::Refused(reason) if text_changed => slot.log.record(AgentEvent::Refused {
                    reason: reason.clone(),
                }),
                Loaded::Invalid(_) | Loaded::Refused(_) => {}
            }
            slot.loaded = loaded;
        }
        for name in &d.added {
            if let Some(slot) = self.slots.get_mut(name) {
                slot.removed = false;
                slot.start_error = None;
                let autostart = slot.good.as_ref().is_some_and(|p| p.autostart);
                match &mut slot.run {
                    Run::Stopping(s) if autostart => s.then = Then::Start(Vec::new()),
                    Run::Stopping(s) => s.then = Then::Stay,
                    Run::Idle if autostart => self.start(name, Vec::new()).await,
                    _ => {}
                }
            }
        }
        for name in &d.changed {
            let Some(slot) = self.slots.get_mut(name) else {
                continue;
            };
            slot.start_error = None;
            let autostart = slot.good.as_ref().is_some_and(|p| p.autostart);
            match &mut slot.run {
                Run::Running(_) => {
                    self.begin_stop(name, "its profile changed", Then::Start(Vec::new()))
                }
                Run::Stopping(s) => {
                    if autostart && matches!(s.then, Then::Stay) {
                        s.then = Then::Start(Vec::new());
                    }
                }
                Run::Idle if autostart => self.start(name, Vec::new()).await,
                Run::Idle => {}
            }
        }
        for name in &d.removed {
            let Some(slot) = self.slots.get_mut(name) else {
                continue;
            };
            slot.removed = true;
            match &mut slot.run {
                Run::Running(_) => self.begin_stop(name, "its file was removed", Then::Forget),
                Run::Stopping(s) => {
                    let before = std::mem::replace(&mut s.then, Then::Forget);
                    refuse_waiters(before, name, "its file was removed");
                }
                Run::Idle => {
                    self.slots.remove(name);
                }
            }
        }
        let summary = self.summary(d.added, d.changed, d.removed);
        if !(summary.added.is_empty() && summary.changed.is_empty() && summary.removed.is_empty()) {
            tracing::info!("profiles reloaded: {summary}");
        }
        summary
    }

    /// True when the directory holds exactly the profiles known, each file as last read: then
    /// applying it would change nothing, and the once-a-second poll costs no clone or
    /// comparison of configurations.
    fn unchanged(&self, scanned: &Scanned) -> bool {
        let known = || self.slots.iter().filter(|(_, s)| !s.removed);
        known().count() == scanned.files.len()
            && known().all(|(name, s)| {
                scanned
                    .files
                    .get(name)
                    .is_some_and(|f| f.path == s.path && s.text.as_ref() == Some(&f.text))
            })
    }

    fn parse(&self, file: &ProfileFile) -> Loaded<Profile> {
        match &file.text {
            Err(Unusable::Broken(why)) => Loaded::Invalid(why.clone()),
            Err(Unusable::Refused(why)) => Loaded::Refused(why.clone()),
            Ok(text) => match profile::parse(&file.path, text, &self.config.local_user) {
                Ok(p) => match named_files_refusal(&p.config) {
                    Some(why) => {
                        Loaded::Refused(format!("{}: refused: {why}", file.path.display()))
                    }
                    None => Loaded::Valid(p),
                },
                Err(e) => Loaded::Invalid(e.to_string()),
            },
        }
    }

    fn summary(
        &self,
        added: Vec<String>,
        changed: Vec<String>,
        removed: Vec<String>,
    ) -> ReloadSummary {
        let invalid = self
            .slots
            .iter()
            .filter(|(_, s)| !s.removed)
            .filter_map(|(n, s)| {
                s.loaded.problem().map(|reason| InvalidProfile {
                    name: n.clone(),
                    reason: reason.to_string(),
                })
            })
            .collect();
        ReloadSummary {
            added,
            changed,
            removed,
            invalid,
        }
    }
}
