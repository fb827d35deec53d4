//! A certificate's validity window in ssh's words, for messages (host and user certificates
//! alike); it depends on nothing else of ours, so errors and checks can both name it.

/// `from 2026-01-01T00:00:00Z to 2027-01-01T00:00:00Z`, `forever`, as ssh prints validity.
pub(crate) fn validity(after: u64, before: u64) -> String {
    match (after, before) {
        (0, u64::MAX) => "forever".into(),
        (0, b) => format!("before {}", utc(b)),
        (a, u64::MAX) => format!("from {} on", utc(a)),
        (a, b) => format!("from {} to {}", utc(a), utc(b)),
    }
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub(crate) fn utc(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Howard Hinnant's civil_from_days, shifted so that eras start on 0000-03-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
