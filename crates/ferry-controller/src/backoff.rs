//! How soon an app whose comparison (or whole reconcile) failed is looked at again. A failure
//! is often transient (an API server restarting, Git unreachable for a moment), so the app comes
//! back after 5 s, then 10, 20, ... up to the resync period, instead of waiting a whole resync
//! with a stale error; the first success resets it. Only the first failure of a streak and the
//! recovery are worth a log line: an outage is logged once, not at every retry of every app.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST_RETRY: Duration = Duration::from_secs(5);

/// When to try again after a failure.
pub struct Retry {
    pub after: Duration,
    /// The first failure since the last success: the one to log.
    pub first: bool,
}

#[derive(Default)]
pub struct ErrorBackoff {
    /// Consecutive failed comparisons per app.
    streaks: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// Counts a failure of `app`; returns when to try again (at most `max`) and whether this
    /// failure starts a streak.
    pub fn failed(&self, app: &str, max: Duration) -> Retry {
        let mut streaks = self.streaks.lock().unwrap_or_else(|p| p.into_inner());
        let streak = streaks.entry(app.to_string()).or_default();
        let delay = FIRST_RETRY.saturating_mul(1 << (*streak).min(16));
        let first = *streak == 0;
        *streak = streak.saturating_add(1);
        Retry {
            after: delay.min(max),
            first,
        }
    }

    /// Forgets `app`'s failures. Returns whether it had any (the app recovered).
    pub fn succeeded(&self, app: &str) -> bool {
        self.streaks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app)
            .is_some()
    }

    /// Forgets the failures of every app `keep` refuses (deleted, or another shard's).
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.streaks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|app, _| keep(app));
    }

    /// How many apps have failures counted.
    pub fn len(&self) -> usize {
        self.streaks.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_the_limit_and_a_success_resets_them() {
        let backoff = ErrorBackoff::default();
        let max = Duration::from_secs(180);
        let retries: Vec<(u64, bool)> = (0..8)
            .map(|_| backoff.failed("web", max))
            .map(|retry| (retry.after.as_secs(), retry.first))
            .collect();
        let delays: Vec<u64> = retries.iter().map(|r| r.0).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 180, 180]);
        let firsts: Vec<bool> = retries.iter().map(|r| r.1).collect();
        assert_eq!(
            firsts,
            [true, false, false, false, false, false, false, false]
        );
        assert_eq!(backoff.failed("api", max).after.as_secs(), 5, "per app");
        assert!(backoff.succeeded("web"));
        assert!(!backoff.succeeded("web"));
        assert!(backoff.failed("web", max).first);
    }
}
