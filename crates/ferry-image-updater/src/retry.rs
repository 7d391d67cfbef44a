//! When an app whose update failed is tried again: after 10 s, then 20, 40, ... up to the
//! interval, instead of a whole interval later; the first success resets it. Only the first
//! failure of a streak and the recovery are worth a log line: a registry outage is logged once
//! per app, not at every retry.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

const FIRST_RETRY: Duration = Duration::from_secs(10);

/// An app: its namespace and name.
pub type AppKey = (String, String);

/// The apps that failed: failures in a row, and when to try again.
#[derive(Debug, Default)]
pub struct Retries {
    apps: BTreeMap<AppKey, (u32, Instant)>,
}

impl Retries {
    /// Counts a failure of `app`, to be tried again at most `max` from `now`; whether it starts
    /// a streak (the one to log).
    pub fn failed(&mut self, app: AppKey, now: Instant, max: Duration) -> bool {
        let (streak, at) = self.apps.entry(app).or_insert((0, now));
        let delay = FIRST_RETRY.saturating_mul(1 << (*streak).min(16)).min(max);
        *at = now + delay;
        *streak += 1;
        *streak == 1
    }

    /// Forgets `app`'s failures; whether it had any (it recovered).
    pub fn succeeded(&mut self, app: &AppKey) -> bool {
        self.apps.remove(app).is_some()
    }

    /// The apps due for a retry at `now`.
    pub fn due(&self, now: Instant) -> BTreeSet<AppKey> {
        let due = self.apps.iter().filter(|(_, (_, at))| *at <= now);
        due.map(|(app, _)| app.clone()).collect()
    }

    /// The earliest retry.
    pub fn next(&self) -> Option<Instant> {
        self.apps.values().map(|(_, at)| *at).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(name: &str) -> AppKey {
        ("argocd".into(), name.into())
    }

    #[test]
    fn retries_double_up_to_the_interval_and_only_a_streak_start_is_logged() {
        let mut retries = Retries::default();
        let (start, max) = (Instant::now(), Duration::from_secs(120));
        let mut delays = Vec::new();
        let mut firsts = Vec::new();
        for _ in 0..6 {
            firsts.push(retries.failed(app("web"), start, max));
            delays.push((retries.next().unwrap() - start).as_secs());
        }
        assert_eq!(delays, [10, 20, 40, 80, 120, 120]);
        assert_eq!(firsts, [true, false, false, false, false, false]);
        assert!(retries.due(start + Duration::from_secs(119)).is_empty());
        assert_eq!(
            retries.due(start + Duration::from_secs(120)),
            BTreeSet::from([app("web")])
        );

        assert!(retries.failed(app("api"), start, max), "per app");
        assert!(retries.succeeded(&app("web")));
        assert!(!retries.succeeded(&app("web")), "a recovery is logged once");
        assert!(retries.failed(app("web"), start, max), "a new streak");
        assert_eq!(retries.next(), Some(start + FIRST_RETRY));
    }
}
