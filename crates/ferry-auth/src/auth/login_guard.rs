//! Brute-force protection for password logins, like Argo CD's session manager: after
//! `max_failures` failed logins for one username within `failure_window`, that username is
//! locked out for `lockout`, whether an account of that name exists or not.
//!
//! A second guard ([`LoginGuard::for_clients`]) counts failures per client address, so one
//! client spraying guesses over many usernames is locked out too (Argo CD counts usernames
//! only). A success does not clear an address's failures: an attacker with an account of their
//! own could otherwise reset the count between guesses.
//!
//! Unlike Argo CD, logins still in progress count towards the limit, so a burst of parallel
//! guesses cannot slip past it; and the memory used stays bounded: at most
//! `max_tracked_usernames` usernames are remembered, forgetting stale ones first, then the
//! least recently tried, and a locked-out username last.
//!
//! With several API server replicas, [`LoginGuard::share_with`] adds the other replicas'
//! failures and lockouts (see [`super::shared_failures`]).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};

use super::clock::{Clock, SystemClock};
use super::error::AuthError;
use super::shared_failures::{Shared, SharedFailures};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginGuardConfig {
    /// Failed logins within `failure_window` that lock a username out (at least 1).
    pub max_failures: usize,
    pub failure_window: Duration,
    pub lockout: Duration,
    pub max_tracked_usernames: usize,
}

/// Argo CD's defaults: 5 failures in 5 minutes, a 5-minute lockout, 10,000 usernames.
impl Default for LoginGuardConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            failure_window: Duration::from_secs(300),
            lockout: Duration::from_secs(300),
            max_tracked_usernames: 10_000,
        }
    }
}

impl LoginGuardConfig {
    /// Per client address: 20 failures in 5 minutes (several people may share an address)
    /// lock the address out for 5 minutes.
    pub fn per_client() -> Self {
        Self {
            max_failures: 20,
            ..Self::default()
        }
    }
}

/// What is known of one username's recent logins.
#[derive(Debug)]
struct Tracked {
    /// Times of the failures within the window, oldest first.
    failures: VecDeque<Timestamp>,
    in_progress: usize,
    locked_until: Option<Timestamp>,
    last_attempt: Timestamp,
}

impl Tracked {
    fn new(now: Timestamp) -> Self {
        Self {
            failures: VecDeque::new(),
            in_progress: 0,
            locked_until: None,
            last_attempt: now,
        }
    }

    fn is_locked(&self, now: Timestamp) -> bool {
        self.locked_until.is_some_and(|until| now < until)
    }

    /// Drops failures that fell out of the window and a lockout that ended.
    fn expire(&mut self, now: Timestamp, window: SignedDuration) {
        if !self.is_locked(now) {
            self.locked_until = None;
        }
        while self
            .failures
            .front()
            .is_some_and(|failed| now.duration_since(*failed) >= window)
        {
            self.failures.pop_front();
        }
    }

    fn is_forgettable(&self) -> bool {
        self.failures.is_empty() && self.in_progress == 0 && self.locked_until.is_none()
    }
}

/// Counts failed logins per username and refuses logins for locked-out usernames. One guard
/// serves the whole server, across settings reloads.
pub struct LoginGuard {
    config: LoginGuardConfig,
    clock: Arc<dyn Clock>,
    tracked: Mutex<HashMap<String, Tracked>>,
    /// What is locked out, for the refusal: `for this username` or `from this address`.
    scope: &'static str,
    /// Whether a success forgets the failures (per username) or not (per address).
    success_clears: bool,
    /// The other replicas' failures, when there are replicas.
    shared: OnceLock<Arc<SharedFailures>>,
}

impl Default for LoginGuard {
    fn default() -> Self {
        Self::new(LoginGuardConfig::default())
    }
}

impl LoginGuard {
    pub fn new(config: LoginGuardConfig) -> Self {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    pub fn with_clock(config: LoginGuardConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            config: LoginGuardConfig {
                max_failures: config.max_failures.max(1),
                ..config
            },
            clock,
            tracked: Mutex::new(HashMap::new()),
            scope: "for this username",
            success_clears: true,
            shared: OnceLock::new(),
        }
    }

    /// A guard keyed by client address rather than username.
    pub fn for_clients(config: LoginGuardConfig, clock: Arc<dyn Clock>) -> Self {
        Self {
            scope: "from this address",
            success_clears: false,
            ..Self::with_clock(config, clock)
        }
    }

    /// Counts the failures and lockouts of the other replicas `shared` reports, from now on.
    pub fn share_with(&self, shared: Arc<SharedFailures>) {
        let _ = self.shared.set(shared);
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// What this replica shares: the names with failures in the window or a lockout, at most
    /// `max` of them, lockouts first and then the most failures.
    pub(crate) fn shared_snapshot(&self, now: Timestamp, max: usize) -> BTreeMap<String, Shared> {
        let window = self.window();
        let mut tracked = self.lock();
        let mut entries: Vec<(String, Shared)> = tracked
            .iter_mut()
            .filter_map(|(name, entry)| {
                entry.expire(now, window);
                let shared = Shared {
                    failures: entry.failures.iter().map(|t| t.as_second()).collect(),
                    locked_until: entry.locked_until.map(|t| t.as_second()),
                };
                (shared != Shared::default()).then(|| (name.clone(), shared))
            })
            .collect();
        entries.sort_by_key(|(_, s)| (s.locked_until.is_none(), usize::MAX - s.failures.len()));
        entries.truncate(max);
        entries.into_iter().collect()
    }

    /// The other replicas' failures of `name` and the end of their lockout of it, if shared.
    fn peers(&self, name: &str, now: Timestamp) -> (usize, Option<Timestamp>) {
        self.shared
            .get()
            .map_or((0, None), |shared| shared.of(name, now, self.window()))
    }

    /// Starts a login for `username`, unless it is locked out or enough logins are already in
    /// progress to reach the limit should they all fail.
    pub(crate) fn begin(&self, username: &str) -> Result<LoginAttempt<'_>, AuthError> {
        let now = self.clock.now();
        let window = self.window();
        let (peer_failures, peer_lockout) = self.peers(username, now);
        let mut tracked = self.lock();
        if !tracked.contains_key(username) {
            self.make_room(&mut tracked, now);
        }
        let entry = tracked
            .entry(username.to_string())
            .or_insert_with(|| Tracked::new(now));
        entry.expire(now, window);
        if let Some(until) = entry.locked_until.max(peer_lockout) {
            return Err(AuthError::TooManyFailedLogins {
                retry_after_secs: whole_seconds_until(now, until),
                scope: self.scope,
            });
        }
        if entry.failures.len() + entry.in_progress + peer_failures >= self.config.max_failures {
            // The logins in progress settle within moments.
            return Err(AuthError::TooManyFailedLogins {
                retry_after_secs: 1,
                scope: self.scope,
            });
        }
        entry.in_progress += 1;
        entry.last_attempt = now;
        Ok(LoginAttempt {
            guard: self,
            username: username.to_string(),
            outcome: Outcome::Abandoned,
        })
    }

    fn settle(&self, username: &str, outcome: Outcome) {
        let now = self.clock.now();
        let window = self.window();
        let (peer_failures, _) = self.peers(username, now);
        let mut tracked = self.lock();
        // Entries with a login in progress are never evicted, so this one is there.
        let Some(entry) = tracked.get_mut(username) else {
            return;
        };
        entry.in_progress -= 1;
        entry.expire(now, window);
        match outcome {
            Outcome::Failed => {
                entry.failures.push_back(now);
                if entry.failures.len() + peer_failures >= self.config.max_failures {
                    entry.locked_until =
                        Some(now.saturating_add(self.lockout()).unwrap_or(Timestamp::MAX));
                    entry.failures.clear();
                }
            }
            Outcome::Succeeded if self.success_clears => entry.failures.clear(),
            Outcome::Succeeded => {}
            Outcome::Abandoned => {}
        }
        if entry.is_forgettable() {
            tracked.remove(username);
        }
        if outcome != Outcome::Abandoned
            && let Some(shared) = self.shared.get()
        {
            shared.touch();
        }
    }

    /// Keeps the number of usernames under the limit before one more is added.
    fn make_room(&self, tracked: &mut HashMap<String, Tracked>, now: Timestamp) {
        if tracked.len() < self.config.max_tracked_usernames {
            return;
        }
        let window = self.window();
        tracked.retain(|_, entry| {
            entry.expire(now, window);
            !entry.is_forgettable()
        });
        while tracked.len() >= self.config.max_tracked_usernames {
            // Unlocked usernames go first, least recently tried first; then the lockouts that
            // end soonest. Logins in progress stay: they are bounded by the requests in flight.
            let victim = tracked
                .iter()
                .filter(|(_, entry)| entry.in_progress == 0)
                .min_by_key(|(_, entry)| match entry.locked_until {
                    None => (false, entry.last_attempt),
                    Some(until) => (true, until),
                })
                .map(|(name, _)| name.clone());
            match victim {
                Some(name) => tracked.remove(&name),
                None => return,
            };
        }
    }

    fn window(&self) -> SignedDuration {
        SignedDuration::try_from(self.config.failure_window).unwrap_or(SignedDuration::MAX)
    }

    fn lockout(&self) -> SignedDuration {
        SignedDuration::try_from(self.config.lockout).unwrap_or(SignedDuration::MAX)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Tracked>> {
        // The map stays consistent even if a holder panicked: every change is a single step.
        self.tracked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn whole_seconds_until(now: Timestamp, until: Timestamp) -> u64 {
    let remaining = until.duration_since(now);
    let secs = remaining.as_secs() + i64::from(remaining.subsec_nanos() > 0);
    u64::try_from(secs).unwrap_or(0).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Failed,
    Succeeded,
    /// Ended without a verdict (an error, a panic): neither a failure nor a success.
    Abandoned,
}

/// One login in progress; it counts towards the limit until it is settled or dropped.
pub(crate) struct LoginAttempt<'g> {
    guard: &'g LoginGuard,
    username: String,
    outcome: Outcome,
}

impl LoginAttempt<'_> {
    pub(crate) fn failed(mut self) {
        self.outcome = Outcome::Failed;
    }

    pub(crate) fn succeeded(mut self) {
        self.outcome = Outcome::Succeeded;
    }
}

impl Drop for LoginAttempt<'_> {
    fn drop(&mut self) {
        self.guard.settle(&self.username, self.outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::super::clock::fake::FakeClock;
    use super::*;

    fn guard(config: LoginGuardConfig) -> (LoginGuard, Arc<FakeClock>) {
        let clock = FakeClock::new();
        (LoginGuard::with_clock(config, clock.clone()), clock)
    }

    fn fail(guard: &LoginGuard, username: &str) -> Result<(), AuthError> {
        guard.begin(username).map(LoginAttempt::failed)
    }

    fn retry_after(result: Result<impl Sized, AuthError>) -> u64 {
        match result {
            Err(AuthError::TooManyFailedLogins {
                retry_after_secs, ..
            }) => retry_after_secs,
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("the login was let through"),
        }
    }

    fn tracked(guard: &LoginGuard) -> Vec<String> {
        let mut names: Vec<String> = guard.lock().keys().cloned().collect();
        names.sort();
        names
    }

    #[test]
    fn other_replicas_failures_count_and_their_lockouts_hold() {
        let (guard, clock) = guard(LoginGuardConfig::default());
        let shared = Arc::new(SharedFailures::new("users", "me"));
        guard.share_with(shared.clone());
        let now = clock.now().as_second();
        let peer = |entries: serde_json::Value| {
            BTreeMap::from([("users.other".to_string(), entries.to_string())])
        };
        shared.merge(&peer(
            serde_json::json!({"admin": {"f": [now - 3, now - 2, now - 1]}, "bob": {"l": now + 60}}),
        ));
        // Three failures elsewhere and two here make five.
        fail(&guard, "admin").unwrap();
        fail(&guard, "admin").unwrap();
        assert_eq!(retry_after(guard.begin("admin")), 300);
        let snapshot = guard.shared_snapshot(clock.now(), 10);
        assert_eq!(snapshot["admin"].locked_until, Some(now + 300));
        assert_eq!(retry_after(guard.begin("bob")), 60);
        assert!(guard.begin("carol").is_ok());
    }

    #[test]
    fn the_fifth_failure_locks_the_username_out_for_the_lockout() {
        let (guard, clock) = guard(LoginGuardConfig::default());
        for _ in 0..4 {
            fail(&guard, "admin").unwrap();
            clock.advance(Duration::from_secs(10));
        }
        guard.begin("admin").unwrap().failed();
        assert_eq!(retry_after(guard.begin("admin")), 300);
        clock.advance(Duration::from_millis(200_500));
        assert_eq!(retry_after(guard.begin("admin")), 100);
        assert!(guard.begin("someone else").is_ok());
        clock.advance(Duration::from_secs(100));
        guard.begin("admin").unwrap().succeeded();
        assert!(tracked(&guard).is_empty(), "{:?}", tracked(&guard));
    }

    #[test]
    fn a_lockout_starts_over_with_a_clean_slate() {
        let (guard, clock) = guard(LoginGuardConfig::default());
        for _ in 0..5 {
            fail(&guard, "admin").unwrap();
        }
        clock.advance(Duration::from_secs(300));
        for _ in 0..4 {
            fail(&guard, "admin").unwrap();
        }
        assert!(guard.begin("admin").is_ok());
    }

    #[test]
    fn only_failures_within_the_window_count() {
        let (guard, clock) = guard(LoginGuardConfig::default());
        for _ in 0..10 {
            fail(&guard, "admin").unwrap();
            clock.advance(Duration::from_secs(75));
        }
        // Four failures in any 300 s: never locked out.
        assert!(guard.begin("admin").is_ok());
        // Failures at -225, -150 and -75 s still count: two more now make five.
        fail(&guard, "admin").unwrap();
        assert!(guard.begin("admin").is_ok());
        fail(&guard, "admin").unwrap();
        assert_eq!(retry_after(guard.begin("admin")), 300);
    }

    #[test]
    fn a_success_forgets_the_failures() {
        let (guard, _) = guard(LoginGuardConfig::default());
        for _ in 0..4 {
            fail(&guard, "admin").unwrap();
        }
        guard.begin("admin").unwrap().succeeded();
        for _ in 0..4 {
            fail(&guard, "admin").unwrap();
        }
        assert!(guard.begin("admin").is_ok());
    }

    #[test]
    fn logins_in_progress_count_towards_the_limit() {
        let (guard, _) = guard(LoginGuardConfig::default());
        fail(&guard, "admin").unwrap();
        let parallel: Vec<_> = (0..4).map(|_| guard.begin("admin").unwrap()).collect();
        assert_eq!(retry_after(guard.begin("admin")), 1);
        // Abandoned attempts (an error elsewhere) are neither failures nor successes.
        drop(parallel);
        let parallel: Vec<_> = (0..4).map(|_| guard.begin("admin").unwrap()).collect();
        for attempt in parallel {
            attempt.failed();
        }
        assert_eq!(retry_after(guard.begin("admin")), 300);
    }

    #[test]
    fn memory_is_bounded_and_lockouts_are_kept_longest() {
        let config = LoginGuardConfig {
            max_tracked_usernames: 3,
            ..LoginGuardConfig::default()
        };
        let (guard, clock) = guard(config);
        for _ in 0..5 {
            fail(&guard, "admin").unwrap();
        }
        for name in ["a", "b", "c", "d", "e"] {
            clock.advance(Duration::from_secs(1));
            fail(&guard, name).unwrap();
        }
        // The oldest unlocked usernames made room; the lockout stayed.
        assert_eq!(tracked(&guard), ["admin", "d", "e"]);
        assert!(guard.begin("admin").is_err());

        // Stale usernames are forgotten before anyone is evicted.
        clock.advance(Duration::from_secs(300));
        fail(&guard, "f").unwrap();
        assert_eq!(tracked(&guard), ["f"]);

        // When only lockouts are left, the one ending soonest goes.
        for name in ["x", "y", "z"] {
            for _ in 0..5 {
                fail(&guard, name).unwrap();
            }
            clock.advance(Duration::from_secs(1));
        }
        assert_eq!(tracked(&guard), ["x", "y", "z"]);
        let _in_progress = guard.begin("w").unwrap();
        assert_eq!(tracked(&guard), ["w", "y", "z"]);
    }

    #[test]
    fn an_address_is_locked_out_across_usernames_and_a_success_does_not_reset_it() {
        let clock = FakeClock::new();
        let config = LoginGuardConfig {
            max_failures: 3,
            ..LoginGuardConfig::per_client()
        };
        let guard = LoginGuard::for_clients(config, clock.clone());
        fail(&guard, "10.0.0.7").unwrap();
        guard.begin("10.0.0.7").unwrap().succeeded();
        fail(&guard, "10.0.0.7").unwrap();
        fail(&guard, "10.0.0.7").unwrap();
        let err = guard.begin("10.0.0.7").err().unwrap();
        assert_eq!(
            err.to_string(),
            "too many failed login attempts from this address: try again in 300 s"
        );
        assert!(guard.begin("10.0.0.8").is_ok());
    }

    #[test]
    fn a_limit_of_zero_failures_still_allows_one_attempt() {
        let (guard, _) = guard(LoginGuardConfig {
            max_failures: 0,
            ..LoginGuardConfig::default()
        });
        fail(&guard, "admin").unwrap();
        assert!(guard.begin("admin").is_err());
    }
}
