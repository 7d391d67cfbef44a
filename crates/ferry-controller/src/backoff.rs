//! How soon an app whose comparison failed is looked at again. A failure is often transient
//! (an API server restarting, Git unreachable for a moment), so the app comes back after 5 s,
//! then 10, 20, ... up to the resync period, instead of waiting a whole resync with a stale
//! error; the first success resets it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

const FIRST_RETRY: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct ErrorBackoff {
    /// Consecutive failed comparisons per app.
    streaks: Mutex<HashMap<String, u32>>,
}

impl ErrorBackoff {
    /// Counts a failure of `app`; returns when to try again, at most `max`.
    pub fn failed(&self, app: &str, max: Duration) -> Duration {
        let mut streaks = self.streaks.lock().unwrap_or_else(|p| p.into_inner());
        let streak = streaks.entry(app.to_string()).or_default();
        let delay = FIRST_RETRY.saturating_mul(1 << (*streak).min(16));
        *streak = streak.saturating_add(1);
        delay.min(max)
    }

    /// Forgets `app`'s failures. Returns whether it had any (the app recovered).
    pub fn succeeded(&self, app: &str) -> bool {
        self.streaks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(app)
            .is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_double_up_to_the_limit_and_a_success_resets_them() {
        let backoff = ErrorBackoff::default();
        let max = Duration::from_secs(180);
        let delays: Vec<u64> = (0..8)
            .map(|_| backoff.failed("web", max).as_secs())
            .collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 180, 180]);
        assert_eq!(backoff.failed("api", max).as_secs(), 5, "per app");
        assert!(backoff.succeeded("web"));
        assert!(!backoff.succeeded("web"));
        assert_eq!(backoff.failed("web", max).as_secs(), 5);
    }
}
