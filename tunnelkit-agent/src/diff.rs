//! What a reload changes, as a pure function: [`diff`] compares the profiles the agent knows
//! (each one's last good configuration) with what the directory holds now, and sorts every
//! name into added, changed, removed, unchanged or invalid. The registry then starts, restarts
//! or stops just those; everything else keeps running untouched (as rathole's
//! `calculate_events` does for its services).

use std::collections::BTreeMap;

/// What one profile file holds after it was read: a validated profile, or why not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded<P> {
    /// A good profile.
    Valid(P),
    /// A broken or unreadable file: `file:line:column: why`.
    Invalid(String),
    /// A file (or a file it names) that another user could have written, not used:
    /// `file: refused: why`.
    Refused(String),
}

impl<P> Loaded<P> {
    /// Why it is not a good profile, if it is not.
    pub fn problem(&self) -> Option<&str> {
        match self {
            Loaded::Valid(_) => None,
            Loaded::Invalid(why) | Loaded::Refused(why) => Some(why),
        }
    }
}

/// Every name sorted by what happens to it (each list in name order).
#[derive(Debug, PartialEq, Eq)]
pub struct Diff {
    /// New, or valid for the first time: start it if it is autostart.
    pub added: Vec<String>,
    /// Its configuration changed: restart it if it runs (start it if it is autostart).
    pub changed: Vec<String>,
    /// Its file is gone: stop and forget it.
    pub removed: Vec<String>,
    /// Same configuration: leave it alone.
    pub unchanged: Vec<String>,
    /// Its file is broken or refused now: report it; a running tunnel keeps its last good
    /// configuration.
    pub invalid: Vec<(String, String)>,
}

/// Compares `old` (name -> last good configuration, `None` for a profile that was never
/// valid) with `new` (name -> what its file holds now).
pub fn diff<P: PartialEq>(
    old: &BTreeMap<String, Option<&P>>,
    new: &BTreeMap<String, Loaded<P>>,
) -> Diff {
    let mut d = Diff {
        added: Vec::new(),
        changed: Vec::new(),
        removed: Vec::new(),
        unchanged: Vec::new(),
        invalid: Vec::new(),
    };
    for (name, loaded) in new {
        let before = old.get(name).copied().flatten();
        match (loaded, before) {
            (Loaded::Invalid(why) | Loaded::Refused(why), _) => {
                d.invalid.push((name.clone(), why.clone()))
            }
            (Loaded::Valid(_), None) => d.added.push(name.clone()),
            (Loaded::Valid(p), Some(q)) if p == q => d.unchanged.push(name.clone()),
            (Loaded::Valid(_), Some(_)) => d.changed.push(name.clone()),
        }
    }
    d.removed = old
        .keys()
        .filter(|name| !new.contains_key(*name))
        .cloned()
        .collect();
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn old<'a>(
        entries: &[(&str, Option<&'a &'static str>)],
    ) -> BTreeMap<String, Option<&'a &'static str>> {
        entries.iter().map(|(n, p)| (n.to_string(), *p)).collect()
    }

    fn new(entries: &[(&str, Loaded<&'static str>)]) -> BTreeMap<String, Loaded<&'static str>> {
        entries
            .iter()
            .map(|(n, l)| (n.to_string(), l.clone()))
            .collect()
    }

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_kind_of_change_in_one_reload() {
        let (a1, b1, c1, d1) = ("a1", "b1", "c1", "d1");
        let before = old(&[
            ("b", Some(&b1)),
            ("c", Some(&c1)),
            ("d", Some(&d1)),
            ("u", Some(&a1)),
        ]);
        let after = new(&[
            ("a", Loaded::Valid("a1")),
            ("b", Loaded::Valid("b2")),
            ("d", Loaded::Invalid("d.toml:1:1: bad".into())),
            ("u", Loaded::Valid("a1")),
        ]);
        let d = diff(&before, &after);
        assert_eq!(d.added, names(&["a"]));
        assert_eq!(d.changed, names(&["b"]));
        assert_eq!(d.removed, names(&["c"]));
        assert_eq!(d.unchanged, names(&["u"]));
        assert_eq!(
            d.invalid,
            vec![("d".to_string(), "d.toml:1:1: bad".to_string())]
        );
    }

    #[test]
    fn nothing_changes_when_nothing_changed() {
        let (a, b) = ("a", "b");
        let before = old(&[("a", Some(&a)), ("b", Some(&b))]);
        let after = new(&[("a", Loaded::Valid("a")), ("b", Loaded::Valid("b"))]);
        let d = diff(&before, &after);
        assert_eq!(d.unchanged, names(&["a", "b"]));
        assert!(d.added.is_empty() && d.changed.is_empty() && d.removed.is_empty());
        assert!(d.invalid.is_empty());
    }

    #[test]
    fn a_file_fixed_after_being_broken_from_the_start_is_added() {
        let before = old(&[("x", None)]);
        let d = diff(&before, &new(&[("x", Loaded::Valid("x"))]));
        assert_eq!(d.added, names(&["x"]));
    }

    #[test]
    fn a_file_restored_to_its_last_good_text_is_unchanged() {
        // Broken and then put back: the running tunnel was never touched and stays so.
        let good = "g";
        let before = old(&[("x", Some(&good))]);
        let d = diff(&before, &new(&[("x", Loaded::Valid("g"))]));
        assert_eq!(d.unchanged, names(&["x"]));
    }

    #[test]
    fn a_broken_file_stays_invalid_and_a_removed_broken_file_is_removed() {
        let before = old(&[("x", None), ("y", None)]);
        let d = diff(&before, &new(&[("x", Loaded::Invalid("why".into()))]));
        assert_eq!(d.invalid, vec![("x".to_string(), "why".to_string())]);
        assert_eq!(d.removed, names(&["y"]));
    }

    #[test]
    fn an_empty_directory_removes_everything_and_a_first_scan_adds_everything() {
        let a = "a";
        let d = diff(&old(&[("a", Some(&a))]), &new(&[]));
        assert_eq!(d.removed, names(&["a"]));
        let d = diff(
            &old(&[]),
            &new(&[("a", Loaded::Valid("a")), ("b", Loaded::Valid("b"))]),
        );
        assert_eq!(d.added, names(&["a", "b"]));
    }
}
