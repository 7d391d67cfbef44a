//! Sync windows: when the Applications of a project may sync.
//!
//! Argo CD's rules: with no matching window every sync is allowed; an active `deny` window
//! blocks syncs (manual ones get through only if every active deny window has `manualSync`);
//! if `allow` windows match, syncs happen only while one is active (manual ones get through
//! outside them only if every inactive allow window has `manualSync`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use super::glob::{Glob, Negation, Separator};
use super::{AppProject, SyncWindow};
use crate::application::Application;
use crate::duration::parse_go_duration;

/// A sync window that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("AppProject {project:?}: sync window {index} ({window}): {cause}")]
pub struct WindowError {
    pub project: String,
    /// Position in `spec.syncWindows`.
    pub index: usize,
    /// The window in short: `deny "0 22 * * *" for "1h"`.
    pub window: String,
    pub cause: String,
}

/// The sync windows of a project that apply to one Application.
#[derive(Debug, Clone)]
pub struct SyncWindows<'a> {
    windows: Vec<Compiled<'a>>,
}

#[derive(Debug, Clone)]
struct Compiled<'a> {
    window: &'a SyncWindow,
    deny: bool,
    cron: Cron,
    duration: SignedDuration,
    time_zone: TimeZone,
}

impl SyncWindow {
    /// Checks kind, schedule, duration and time zone, as Argo CD does when a window is saved.
    pub fn validate(&self) -> Result<(), String> {
        self.compile().map(|_| ())
    }

    fn compile(&self) -> Result<Compiled<'_>, String> {
        let deny = match self.kind.as_str() {
            "allow" => false,
            "deny" => true,
            other => return Err(format!("kind {other:?} must be allow or deny")),
        };
        if self.schedule.trim_start().starts_with('@') {
            return Err(
                "schedule must be five cron fields (descriptors like @daily are not accepted)"
                    .into(),
            );
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(&self.schedule)
            .map_err(|err| format!("cannot parse schedule: {err}"))?;
        let duration = parse_go_duration(&self.duration).map_err(|err| err.to_string())?;
        let duration = SignedDuration::try_from(duration)
            .map_err(|_| format!("duration {:?} is too long", self.duration))?;
        let time_zone = match self.time_zone.as_str() {
            "" => TimeZone::UTC,
            name => TimeZone::get(name).map_err(|_| format!("unknown time zone {name:?}"))?,
        };
        Ok(Compiled {
            window: self,
            deny,
            cron,
            duration,
            time_zone,
        })
    }

    /// Whether the window applies to `app`: by application name, destination namespace or
    /// destination cluster (server URL or name) globs — any of them, or all non-empty ones with
    /// `andOperator`.
    fn matches(&self, app: &Application) -> Result<bool, String> {
        let any = |patterns: &[String], values: &[&str]| -> Result<bool, String> {
            for pattern in patterns {
                let glob = Glob::new(pattern, Separator::None, Negation::Literal)
                    .map_err(|err| format!("invalid pattern {pattern:?}: {}", err.kind()))?;
                if values.iter().any(|v| glob.matches(v)) {
                    return Ok(true);
                }
            }
            Ok(false)
        };
        let dest = &app.spec.destination;
        let name = app.metadata.name.as_deref().unwrap_or_default();
        let selectors = [
            (&self.applications, vec![name]),
            (&self.namespaces, vec![dest.namespace.as_str()]),
            // An unset cluster name or server never matches, not even `*`.
            (
                &self.clusters,
                [dest.name.as_str(), dest.server.as_str()]
                    .into_iter()
                    .filter(|v| !v.is_empty())
                    .collect(),
            ),
        ];
        let mut used = 0;
        let mut matched = 0;
        for (patterns, values) in selectors {
            if patterns.is_empty() {
                continue;
            }
            used += 1;
            if any(patterns, &values)? {
                matched += 1;
            }
        }
        Ok(if self.and_operator {
            used > 0 && matched == used
        } else {
            matched > 0
        })
    }
}

impl AppProject {
    /// The windows that apply to `app`, ready to evaluate. Errors name the first window that
    /// has a bad selector, or that applies and cannot be evaluated.
    pub fn sync_windows(&self, app: &Application) -> Result<SyncWindows<'_>, WindowError> {
        let mut windows = Vec::new();
        for (index, window) in self.spec.sync_windows.iter().enumerate() {
            let error = |cause| self.window_error(index, cause);
            if window.matches(app).map_err(error)? {
                windows.push(window.compile().map_err(error)?);
            }
        }
        Ok(SyncWindows { windows })
    }

    /// Every window of the project, whichever Applications it applies to (what Argo CD's
    /// `GetSyncWindowsState` evaluates).
    pub fn all_sync_windows(&self) -> Result<SyncWindows<'_>, WindowError> {
        let windows = self
            .spec
            .sync_windows
            .iter()
            .enumerate()
            .map(|(index, window)| {
                window
                    .compile()
                    .map_err(|cause| self.window_error(index, cause))
            })
            .collect::<Result<_, _>>()?;
        Ok(SyncWindows { windows })
    }

    fn window_error(&self, index: usize, cause: String) -> WindowError {
        let window = &self.spec.sync_windows[index];
        WindowError {
            project: self.metadata.name.clone().unwrap_or_default(),
            index,
            window: format!(
                "{} {:?} for {:?}",
                window.kind, window.schedule, window.duration
            ),
            cause,
        }
    }
}

impl<'a> SyncWindows<'a> {
    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }

    /// All windows that apply to the Application.
    pub fn all(&self) -> impl Iterator<Item = &'a SyncWindow> + '_ {
        self.windows.iter().map(|w| w.window)
    }

    /// The windows active at `now`.
    pub fn active(&self, now: Timestamp) -> Vec<&'a SyncWindow> {
        self.windows
            .iter()
            .filter(|w| w.is_active(now))
            .map(|w| w.window)
            .collect()
    }

    /// Whether a sync may start at `now`; `manual` for syncs a person asked for.
    pub fn can_sync(&self, now: Timestamp, manual: bool) -> bool {
        let (active, inactive): (Vec<_>, Vec<_>) =
            self.windows.iter().partition(|w| w.is_active(now));
        let active_denies: Vec<_> = active.iter().filter(|w| w.deny).collect();
        if !active_denies.is_empty() {
            return manual && active_denies.iter().all(|w| w.window.manual_sync);
        }
        if active.iter().any(|w| !w.deny) {
            return true;
        }
        let inactive_allows: Vec<_> = inactive.iter().filter(|w| !w.deny).collect();
        inactive_allows.is_empty() || manual && inactive_allows.iter().all(|w| w.window.manual_sync)
    }
}

impl Compiled<'_> {
    /// Active from a scheduled start (inclusive) for `duration`: some start lies in
    /// `(now - duration, now]`. Whole seconds, as cron has no finer grain.
    fn is_active(&self, now: Timestamp) -> bool {
        let Ok(now) = Timestamp::from_second(now.as_second()) else {
            return false;
        };
        let Ok(since) = now.checked_sub(self.duration) else {
            return false;
        };
        if self.never_fires() {
            return false;
        }
        let since = since.to_zoned(self.time_zone.clone());
        self.cron
            .find_next_occurrence(&since, false)
            .is_ok_and(|start| start.timestamp() <= now)
    }

    /// Whether the schedule never fires (30 February). The cron library searches thousands of
    /// years to say so — a tenth of a second or more, at every reconcile — so the answer is
    /// kept per schedule and time zone.
    fn never_fires(&self) -> bool {
        static KNOWN: LazyLock<Mutex<HashMap<(String, String), bool>>> =
            LazyLock::new(Mutex::default);
        let key = (self.window.schedule.clone(), self.window.time_zone.clone());
        if let Some(never) = KNOWN.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return *never;
        }
        let epoch = Timestamp::UNIX_EPOCH.to_zoned(self.time_zone.clone());
        let never = self.cron.find_next_occurrence(&epoch, false).is_err();
        let mut known = KNOWN.lock().unwrap_or_else(|p| p.into_inner());
        // Bounded: projects name few schedules; a flood of new ones starts the memory afresh.
        if known.len() >= MAX_KNOWN_SCHEDULES {
            known.clear();
        }
        known.insert(key, never);
        never
    }
}

/// How many schedules [`Compiled::never_fires`] remembers at most.
const MAX_KNOWN_SCHEDULES: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    fn project(windows: &str) -> AppProject {
        serde_yaml::from_str(&format!(
            "metadata: {{name: p}}\nspec: {{syncWindows: {windows}}}"
        ))
        .unwrap()
    }

    fn app(name: &str, server: &str, cluster: &str, namespace: &str) -> Application {
        serde_yaml::from_str(&format!(
            "metadata: {{name: {name}}}\nspec: {{destination: {{server: '{server}', name: '{cluster}', namespace: '{namespace}'}}}}"
        ))
        .unwrap()
    }

    fn web() -> Application {
        app("web-prod", "https://prod.example", "prod", "web")
    }

    fn at(rfc3339: &str) -> Timestamp {
        rfc3339.parse().unwrap()
    }

    #[test]
    fn windows_match_by_name_namespace_or_cluster() {
        let p = project(
            "[{kind: deny, schedule: '* * * * *', duration: 1h, applications: ['*-prod']}, \
              {kind: deny, schedule: '* * * * *', duration: 1h, namespaces: [db]}, \
              {kind: deny, schedule: '* * * * *', duration: 1h, clusters: [prod]}, \
              {kind: deny, schedule: '* * * * *', duration: 1h, clusters: ['https://prod.*']}, \
              {kind: deny, schedule: '* * * * *', duration: 1h, applications: [other], namespaces: [web], andOperator: true}, \
              {kind: deny, schedule: '* * * * *', duration: 1h, applications: ['web-*'], namespaces: [web], andOperator: true}]",
        );
        let matched: Vec<usize> = p
            .sync_windows(&web())
            .unwrap()
            .all()
            .map(|w| {
                p.spec
                    .sync_windows
                    .iter()
                    .position(|x| std::ptr::eq(x, w))
                    .unwrap()
            })
            .collect();
        assert_eq!(matched, [0, 2, 3, 5]);
        assert!(project("[]").sync_windows(&web()).unwrap().is_empty());
    }

    #[test]
    fn a_window_is_active_from_its_start_for_its_duration() {
        let p =
            project("[{kind: allow, schedule: '0 22 * * *', duration: 1h, applications: ['*']}]");
        let w = p.sync_windows(&web()).unwrap();
        assert!(w.active(at("2024-05-10T21:59:59Z")).is_empty());
        assert_eq!(w.active(at("2024-05-10T22:00:00Z")).len(), 1);
        assert_eq!(w.active(at("2024-05-10T22:59:59Z")).len(), 1);
        assert!(w.active(at("2024-05-10T23:00:00Z")).is_empty());
    }

    #[test]
    fn a_project_has_all_its_windows_whichever_apps_they_name() {
        let p = project(
            "[{kind: allow, schedule: '0 22 * * *', duration: 1h, applications: [other]}, \
              {kind: deny, schedule: '0 8 * * *', duration: 1h, namespaces: [db]}]",
        );
        let all = p.all_sync_windows().unwrap();
        assert_eq!(all.all().count(), 2);
        let active = all.active(at("2024-05-10T22:30:00Z"));
        assert_eq!(active, [&p.spec.sync_windows[0]]);
        let broken = project("[{kind: deny, schedule: '@daily', duration: 1h, applications: [x]}]");
        let err = broken.all_sync_windows().unwrap_err();
        assert_eq!(err.index, 0);
    }

    #[test]
    fn windows_can_span_midnight_and_days() {
        let p =
            project("[{kind: deny, schedule: '0 18 * * 5', duration: 63h, applications: ['*']}]");
        let w = p.sync_windows(&web()).unwrap();
        // Friday 18:00 to Monday 09:00 (2024-05-10 is a Friday).
        assert!(!w.can_sync(at("2024-05-11T12:00:00Z"), false));
        assert!(!w.can_sync(at("2024-05-13T08:59:00Z"), false));
        assert!(w.can_sync(at("2024-05-13T09:00:00Z"), false));
        assert!(w.can_sync(at("2024-05-10T17:59:00Z"), false));
    }

    #[test]
    fn time_zones_move_the_schedule_and_follow_daylight_saving() {
        let p = project(
            "[{kind: deny, schedule: '0 9 * * *', duration: 1h, timeZone: Europe/Amsterdam, applications: ['*']}]",
        );
        let w = p.sync_windows(&web()).unwrap();
        // 09:00 in Amsterdam is 07:00 UTC in summer and 08:00 UTC in winter.
        assert!(!w.can_sync(at("2024-07-01T07:30:00Z"), false));
        assert!(w.can_sync(at("2024-07-01T08:30:00Z"), false));
        assert!(w.can_sync(at("2024-01-15T07:30:00Z"), false));
        assert!(!w.can_sync(at("2024-01-15T08:30:00Z"), false));
    }

    #[test]
    fn deny_wins_and_manual_sync_lets_people_through() {
        let both = project(
            "[{kind: allow, schedule: '0 * * * *', duration: 1h, applications: ['*']}, \
              {kind: deny, schedule: '0 12 * * *', duration: 1h, applications: ['*'], manualSync: true}]",
        );
        let w = both.sync_windows(&web()).unwrap();
        let noon = at("2024-05-10T12:30:00Z");
        assert!(!w.can_sync(noon, false));
        assert!(w.can_sync(noon, true));
        assert!(w.can_sync(at("2024-05-10T13:30:00Z"), false));

        // manualSync must be set on every active deny window.
        let strict = project(
            "[{kind: deny, schedule: '0 12 * * *', duration: 1h, applications: ['*'], manualSync: true}, \
              {kind: deny, schedule: '0 12 * * *', duration: 2h, namespaces: ['*']}]",
        );
        assert!(!strict.sync_windows(&web()).unwrap().can_sync(noon, true));
    }

    #[test]
    fn allow_windows_confine_syncs() {
        let p = project(
            "[{kind: allow, schedule: '0 22 * * *', duration: 1h, applications: ['*']}, \
              {kind: allow, schedule: '0 6 * * *', duration: 1h, applications: ['*'], manualSync: true}]",
        );
        let w = p.sync_windows(&web()).unwrap();
        assert!(w.can_sync(at("2024-05-10T22:10:00Z"), false));
        assert!(w.can_sync(at("2024-05-10T06:10:00Z"), false));
        assert!(!w.can_sync(at("2024-05-10T12:00:00Z"), false));
        // Outside every allow window, manual syncs need manualSync on all of them.
        assert!(!w.can_sync(at("2024-05-10T12:00:00Z"), true));
        let p = project(
            "[{kind: allow, schedule: '0 22 * * *', duration: 1h, applications: ['*'], manualSync: true}]",
        );
        assert!(
            p.sync_windows(&web())
                .unwrap()
                .can_sync(at("2024-05-10T12:00:00Z"), true)
        );
        // Windows that do not match the app change nothing.
        let p =
            project("[{kind: allow, schedule: '0 22 * * *', duration: 1h, applications: [db]}]");
        assert!(
            p.sync_windows(&web())
                .unwrap()
                .can_sync(at("2024-05-10T12:00:00Z"), false)
        );
    }

    #[test]
    fn dom_and_dow_are_ored_unless_one_is_a_star() {
        // Vixie cron / robfig: the 1st of the month OR any Monday.
        let p = project("[{kind: deny, schedule: '0 0 1 * 1', duration: 1h, applications: ['*']}]");
        let w = p.sync_windows(&web()).unwrap();
        assert!(!w.can_sync(at("2024-05-01T00:30:00Z"), false)); // a Wednesday, the 1st
        assert!(!w.can_sync(at("2024-05-06T00:30:00Z"), false)); // a Monday
        assert!(w.can_sync(at("2024-05-07T00:30:00Z"), false));
        let never =
            project("[{kind: deny, schedule: '0 0 30 2 *', duration: 1h, applications: ['*']}]");
        assert!(
            never
                .sync_windows(&web())
                .unwrap()
                .can_sync(at("2024-02-29T00:30:00Z"), false)
        );
    }

    #[test]
    fn bad_windows_are_errors_naming_the_window() {
        let err = |windows: &str| {
            project(windows)
                .sync_windows(&web())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("[{kind: maybe, schedule: '* * * * *', duration: 1h, applications: ['*']}]"),
            "AppProject \"p\": sync window 0 (maybe \"* * * * *\" for \"1h\"): kind \"maybe\" must be allow or deny"
        );
        assert!(
            err("[{kind: deny, schedule: '0 22 * *', duration: 1h, applications: ['*']}]")
                .contains("cannot parse schedule")
        );
        assert!(
            err("[{kind: deny, schedule: '0 0 22 * * *', duration: 1h, applications: ['*']}]")
                .contains("cannot parse schedule")
        );
        assert!(
            err("[{kind: deny, schedule: '@daily', duration: 1h, applications: ['*']}]")
                .contains("descriptors")
        );
        assert!(
            err("[{kind: deny, schedule: '0 1 * * *', duration: 1d, applications: ['*']}]")
                .contains("invalid duration \"1d\": unknown unit")
        );
        assert!(err("[{kind: deny, schedule: '0 1 * * *', duration: 1h, timeZone: Mars/Base, applications: ['*']}]")
            .contains("unknown time zone \"Mars/Base\""));
        assert!(
            err("[{kind: deny, schedule: '0 1 * * *', duration: 1h, applications: ['[']}]")
                .contains("invalid pattern \"[\"")
        );
        // A broken window that does not apply to the app does not block it.
        let p = project("[{kind: maybe, schedule: x, duration: y, applications: [db]}]");
        assert!(p.sync_windows(&web()).unwrap().is_empty());
        assert!(p.spec.sync_windows[0].validate().is_err());
    }
}
