//! Automated sync: whether an OutOfSync Application gets a sync without anyone asking, with
//! Argo CD's rules. A new revision is synced once (a failed attempt is not repeated for the
//! same revision, except through the retry strategy); with self-heal, drift at an already synced
//! revision is synced again after a delay that doubles with every attempt.

use std::time::Duration;

use ferry_types::Application;
use ferry_types::application::{OperationPhase, SyncStatusCode};

use crate::settings::ControllerSettings;
use ferry_appstate::Comparison;

#[derive(Debug, PartialEq)]
pub enum Decision {
    /// Sync now; `self_heal_attempts` goes into the operation.
    Sync { self_heal_attempts: i64 },
    /// Self-heal is due after this delay.
    Later(Duration),
    /// The last automated attempt at this target failed: no new attempt (retries are the retry
    /// strategy's business); the message is for a SyncError condition.
    Failed(String),
    /// Nothing to do, and why (for the log).
    No(String),
}

/// Decides for an app whose comparison succeeded. `revisions` are the resolved revisions of its
/// sources; `now` is a Unix timestamp in seconds.
pub fn decide(
    app: &Application,
    comparison: &Comparison,
    revisions: &[String],
    settings: &ControllerSettings,
    now: i64,
) -> Decision {
    let Some(policy) = &app.spec.sync_policy else {
        return Decision::No("automated sync is off".into());
    };
    if !policy.is_automated() {
        return Decision::No("automated sync is off".into());
    }
    let automated = policy.automated.clone().unwrap_or_default();
    if comparison.sync != SyncStatusCode::OutOfSync {
        return Decision::No(format!("application is {:?}", comparison.sync));
    }
    if !automated.prune {
        let only_prunes = comparison
            .resources
            .iter()
            .all(|r| !comparison.out_of_sync.contains(&r.key()) || r.requires_pruning);
        if only_prunes {
            return Decision::No(
                "only resources that require pruning differ, and automated prune is off".into(),
            );
        }
    }
    let status = app.status.clone().unwrap_or_default();
    let Some(last) = status.operation_state else {
        return Decision::Sync {
            self_heal_attempts: 0,
        };
    };
    let last_sync = last.operation.sync.clone().unwrap_or_default();
    let last_revisions = last
        .sync_result
        .as_ref()
        .map(|r| {
            if r.revisions.is_empty() {
                vec![r.revision.clone()]
            } else {
                r.revisions.clone()
            }
        })
        .unwrap_or_default();
    let same_target = last_revisions == revisions
        && last
            .sync_result
            .as_ref()
            .is_some_and(|r| same_sources(app, r.source.as_ref(), &r.sources));
    if !same_target {
        return Decision::Sync {
            self_heal_attempts: 0,
        };
    }
    if last.phase != OperationPhase::Succeeded && last.operation.initiated_by.automated {
        return Decision::Failed(format!(
            "Failed last sync attempt to {}: {}",
            revisions.join(", "),
            last.message
        ));
    }
    if !automated.self_heal {
        return Decision::No(format!(
            "already attempted sync to {} ({:?})",
            revisions.join(", "),
            last.phase
        ));
    }
    if last.phase != OperationPhase::Succeeded {
        return Decision::Failed(format!(
            "Failed last sync attempt to {}: {}",
            revisions.join(", "),
            last.message
        ));
    }
    let finished = last
        .finished_at
        .as_ref()
        .map(|t| t.0.as_second())
        .unwrap_or_default();
    // Drift long after the last self-heal starts the backoff over.
    let cooled_down = now - finished
        > i64::try_from(settings.self_heal_backoff_max.as_secs()).unwrap_or(i64::MAX);
    let attempts = if cooled_down {
        0
    } else {
        last_sync.auto_heal_attempts_count
    };
    let delay = self_heal_delay(settings, attempts);
    let due = finished + i64::try_from(delay.as_secs()).unwrap_or(i64::MAX);
    if now < due {
        return Decision::Later(Duration::from_secs(u64::try_from(due - now).unwrap_or(0)));
    }
    Decision::Sync {
        self_heal_attempts: attempts + 1,
    }
}

/// The wait before self-heal attempt `attempts + 1`: the base backoff doubled per earlier
/// attempt, capped. The first self-heal after a sync waits the base delay.
fn self_heal_delay(settings: &ControllerSettings, attempts: i64) -> Duration {
    let factor = 2u32.saturating_pow(u32::try_from(attempts.clamp(0, 16)).unwrap_or(16));
    settings
        .self_heal_backoff
        .saturating_mul(factor)
        .min(settings.self_heal_backoff_max)
}

/// Whether the last sync used the spec's current sources (a rollback or a spec change makes it a
/// different target even at the same revision).
fn same_sources(
    app: &Application,
    source: Option<&ferry_types::source::ApplicationSource>,
    sources: &[ferry_types::source::ApplicationSource],
) -> bool {
    let strip = |s: &ferry_types::source::ApplicationSource| {
        let mut s = s.clone();
        s.target_revision.clear();
        s
    };
    let recorded: Vec<_> = match source {
        Some(source) => vec![strip(source)],
        None => sources.iter().map(strip).collect(),
    };
    let current: Vec<_> = app.sources().iter().map(strip).collect();
    recorded == current
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_types::ResourceKey;
    use ferry_types::application::ResourceStatus;

    fn app(yaml: &str) -> Application {
        serde_yaml::from_str(yaml).unwrap()
    }

    const AUTO: &str = "spec:
  source: {repoURL: https://git.example/apps, path: web, targetRevision: main}
  destination: {server: https://kubernetes.default.svc, namespace: web}
  syncPolicy: {automated: {selfHeal: true}}
";

    fn out_of_sync() -> Comparison {
        let key = ResourceKey::new("apps", "Deployment", "web", "web");
        Comparison {
            sync: SyncStatusCode::OutOfSync,
            resources: vec![ResourceStatus {
                group: key.group.clone(),
                kind: key.kind.clone(),
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                ..Default::default()
            }],
            out_of_sync: [key].into(),
            ..Default::default()
        }
    }

    fn with_last(
        app_yaml: &str,
        phase: &str,
        revision: &str,
        attempts: i64,
        finished: &str,
    ) -> Application {
        app(&format!(
            "{app_yaml}status:
  operationState:
    phase: {phase}
    operation: {{sync: {{revision: {revision}, autoHealAttemptsCount: {attempts}}}}}
    finishedAt: \"{finished}\"
    syncResult:
      revision: {revision}
      source: {{repoURL: https://git.example/apps, path: web, targetRevision: main}}
"
        ))
    }

    fn at(time: &str) -> i64 {
        time.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn a_new_revision_is_synced() {
        let settings = ControllerSettings::default();
        let a = with_last(AUTO, "Succeeded", "aaa", 0, "2026-01-01T00:00:00Z");
        let decision = decide(
            &a,
            &out_of_sync(),
            &["bbb".into()],
            &settings,
            at("2026-01-01T00:00:01Z"),
        );
        assert_eq!(
            decision,
            Decision::Sync {
                self_heal_attempts: 0
            }
        );
        let fresh = app(AUTO);
        assert_eq!(
            decide(&fresh, &out_of_sync(), &["aaa".into()], &settings, 0),
            Decision::Sync {
                self_heal_attempts: 0
            }
        );
    }

    #[test]
    fn a_spec_change_at_the_same_revision_is_a_new_sync() {
        let synced = with_last(AUTO, "Succeeded", "aaa", 0, "2026-01-01T00:00:00Z");
        let mut written_back = synced.clone();
        let source = written_back.spec.source.as_mut().unwrap();
        source.kustomize = serde_yaml::from_str("images: ['web:1.1.0']").unwrap();
        assert_eq!(
            decide(
                &written_back,
                &out_of_sync(),
                &["aaa".into()],
                &Default::default(),
                0
            ),
            Decision::Sync {
                self_heal_attempts: 0
            }
        );
    }

    #[test]
    fn self_heal_waits_a_doubling_delay() {
        let settings = ControllerSettings::default();
        let a = with_last(AUTO, "Succeeded", "aaa", 2, "2026-01-01T00:00:00Z");
        // Third attempt: 2s base doubled twice.
        let decision = decide(
            &a,
            &out_of_sync(),
            &["aaa".into()],
            &settings,
            at("2026-01-01T00:00:05Z"),
        );
        assert_eq!(decision, Decision::Later(Duration::from_secs(3)));
        let decision = decide(
            &a,
            &out_of_sync(),
            &["aaa".into()],
            &settings,
            at("2026-01-01T00:00:09Z"),
        );
        assert_eq!(
            decision,
            Decision::Sync {
                self_heal_attempts: 3
            }
        );
        // Long after: the backoff starts over.
        let decision = decide(
            &a,
            &out_of_sync(),
            &["aaa".into()],
            &settings,
            at("2026-01-01T01:00:00Z"),
        );
        assert_eq!(
            decision,
            Decision::Sync {
                self_heal_attempts: 1
            }
        );
    }

    #[test]
    fn no_second_attempt_at_the_same_revision_without_self_heal_or_after_failure() {
        let settings = ControllerSettings::default();
        let no_heal = AUTO.replace("selfHeal: true", "prune: true");
        let a = with_last(&no_heal, "Succeeded", "aaa", 0, "2026-01-01T00:00:00Z");
        assert!(matches!(
            decide(
                &a,
                &out_of_sync(),
                &["aaa".into()],
                &settings,
                at("2026-01-02T00:00:00Z")
            ),
            Decision::No(_)
        ));
        let failed = with_last(AUTO, "Failed", "aaa", 0, "2026-01-01T00:00:00Z");
        assert!(matches!(
            decide(
                &failed,
                &out_of_sync(),
                &["aaa".into()],
                &settings,
                at("2026-01-02T00:00:00Z")
            ),
            Decision::Failed(message) if message.starts_with("Failed last sync attempt to aaa")
        ));
    }

    #[test]
    fn extras_alone_need_automated_prune() {
        let settings = ControllerSettings::default();
        let mut comparison = out_of_sync();
        comparison.resources[0].requires_pruning = true;
        assert!(matches!(
            decide(&app(AUTO), &comparison, &["aaa".into()], &settings, 0),
            Decision::No(_)
        ));
        let pruning = app(&AUTO.replace("selfHeal: true", "prune: true"));
        assert_eq!(
            decide(&pruning, &comparison, &["aaa".into()], &settings, 0),
            Decision::Sync {
                self_heal_attempts: 0
            }
        );
    }

    #[test]
    fn manual_apps_and_synced_apps_are_left_alone() {
        let settings = ControllerSettings::default();
        let manual = app(&AUTO.replace("  syncPolicy: {automated: {selfHeal: true}}\n", ""));
        assert!(matches!(
            decide(&manual, &out_of_sync(), &["aaa".into()], &settings, 0),
            Decision::No(_)
        ));
        let synced = Comparison {
            sync: SyncStatusCode::Synced,
            ..Default::default()
        };
        assert!(matches!(
            decide(&app(AUTO), &synced, &["aaa".into()], &settings, 0),
            Decision::No(_)
        ));
    }
}
