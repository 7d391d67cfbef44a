//! The rules for requesting an operation on an Application, shared by the API server and the
//! CLI's core mode so both refuse and build requests exactly as Argo CD's API server does.

use super::operation::{
    Operation, OperationInitiator, SyncOperation, SyncStrategy, SyncStrategyApply,
};
use crate::Application;

/// Why an operation cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("application {0}: another operation is already in progress")]
    InProgress(String),
    #[error(
        "cannot sync application {app} to {requested}: auto-sync is enabled and syncs to {target:?}"
    )]
    AutoSyncElsewhere {
        app: String,
        requested: String,
        target: String,
    },
    #[error("application {0}: rollback cannot be initiated when auto-sync is enabled")]
    RollbackWithAutoSync(String),
    #[error("application {app} has no deployment with ID {id} in its history")]
    NoSuchDeployment { app: String, id: i64 },
    #[error(
        "application {app}: deployment {id} records no source (deployed by Argo CD 0.11 or older); sync to its revision instead"
    )]
    NoRecordedSource { app: String, id: i64 },
}

impl Application {
    fn app_name(&self) -> String {
        self.metadata.name.clone().unwrap_or_default()
    }

    fn is_automated(&self) -> bool {
        self.spec
            .sync_policy
            .as_ref()
            .is_some_and(|policy| policy.is_automated())
    }

    /// Sets `operation`, unless one is requested or running, or auto-sync would sync to another
    /// revision than the one a (non dry-run) sync asks for. The last operation's state goes, as
    /// Argo CD's API server does, so the state that appears next is this operation's.
    pub fn request_operation(&mut self, operation: &Operation) -> Result<(), RequestError> {
        let running = self
            .status
            .as_ref()
            .and_then(|status| status.operation_state.as_ref())
            .is_some_and(|state| !state.phase.is_completed());
        if self.operation.is_some() || running {
            return Err(RequestError::InProgress(self.app_name()));
        }
        if let Some(sync) = operation.sync.as_ref().filter(|sync| !sync.dry_run) {
            let target = self
                .sources()
                .first()
                .map(|source| source.target_revision.clone())
                .unwrap_or_default();
            let plain_sync = sync.source.is_none() && sync.sources.is_empty();
            if self.is_automated()
                && plain_sync
                && !sync.revision.is_empty()
                && sync.revision != target
            {
                return Err(RequestError::AutoSyncElsewhere {
                    app: self.app_name(),
                    requested: sync.revision.clone(),
                    target,
                });
            }
        }
        self.operation = Some(operation.clone());
        if let Some(status) = self.status.as_mut() {
            status.operation_state = None;
        }
        Ok(())
    }

    /// The operation that rolls back to deployment `id` of the history, as Argo CD's API server
    /// builds it: the recorded source(s) and revision(s), the app's sync options, a plain apply.
    pub fn rollback_operation(
        &self,
        id: i64,
        prune: bool,
        dry_run: bool,
        initiated_by: OperationInitiator,
    ) -> Result<Operation, RequestError> {
        let app = self.app_name();
        if self.is_automated() && !dry_run {
            return Err(RequestError::RollbackWithAutoSync(app));
        }
        let history = self
            .status
            .as_ref()
            .map(|status| status.history.as_slice())
            .unwrap_or_default();
        let entry = history.iter().find(|entry| entry.id == id).ok_or_else(|| {
            RequestError::NoSuchDeployment {
                app: app.clone(),
                id,
            }
        })?;
        if entry.source.is_none() && entry.sources.is_empty() {
            return Err(RequestError::NoRecordedSource { app, id });
        }
        let sync_options = self
            .spec
            .sync_policy
            .as_ref()
            .map(|policy| policy.sync_options.clone())
            .unwrap_or_default();
        Ok(Operation {
            sync: Some(SyncOperation {
                revision: entry.revision.clone(),
                revisions: entry.revisions.clone(),
                prune,
                dry_run,
                sync_options,
                sync_strategy: Some(SyncStrategy {
                    apply: Some(SyncStrategyApply::default()),
                    ..SyncStrategy::default()
                }),
                source: entry.source.clone(),
                sources: entry.sources.clone(),
                ..SyncOperation::default()
            }),
            initiated_by,
            ..Operation::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata: {name: guestbook}
spec:
  project: default
  source: {repoURL: "https://git.example.com/apps", path: guestbook, targetRevision: main}
  destination: {server: "https://kubernetes.default.svc", namespace: guestbook}
status:
  history:
  - {id: 0, revision: aaa, source: {repoURL: "https://git.example.com/apps", path: guestbook, targetRevision: main}}
  - {id: 1, revision: bbb}
"#;

    fn app(extra: &str) -> Application {
        serde_yaml::from_str(&format!("{APP}{extra}")).unwrap()
    }

    fn sync_to(revision: &str) -> Operation {
        Operation {
            sync: Some(SyncOperation {
                revision: revision.into(),
                ..SyncOperation::default()
            }),
            ..Operation::default()
        }
    }

    #[test]
    fn one_operation_at_a_time() {
        let mut guestbook = app("");
        guestbook.request_operation(&sync_to("")).unwrap();
        assert_eq!(guestbook.operation, Some(sync_to("")));
        assert_eq!(
            guestbook.request_operation(&sync_to("")),
            Err(RequestError::InProgress("guestbook".into()))
        );
    }

    #[test]
    fn auto_synced_apps_only_sync_to_their_target() {
        let automated = app("").with_automation();
        let err = automated
            .clone()
            .request_operation(&sync_to("v2"))
            .unwrap_err();
        assert!(err.to_string().contains("auto-sync is enabled"), "{err}");
        automated
            .clone()
            .request_operation(&sync_to("main"))
            .unwrap();
        let mut dry_run = sync_to("v2");
        dry_run.sync.as_mut().unwrap().dry_run = true;
        automated.clone().request_operation(&dry_run).unwrap();
    }

    #[test]
    fn rollbacks_replay_a_recorded_deployment() {
        let guestbook = app("");
        let rollback = guestbook
            .rollback_operation(0, true, false, OperationInitiator::default())
            .unwrap();
        let sync = rollback.sync.unwrap();
        assert_eq!(sync.revision, "aaa");
        assert!(sync.prune && sync.source.is_some());
        assert_eq!(
            guestbook.rollback_operation(1, false, false, OperationInitiator::default()),
            Err(RequestError::NoRecordedSource {
                app: "guestbook".into(),
                id: 1
            })
        );
        assert!(matches!(
            guestbook.rollback_operation(7, false, false, OperationInitiator::default()),
            Err(RequestError::NoSuchDeployment { id: 7, .. })
        ));
        let err = app("")
            .with_automation()
            .rollback_operation(0, false, false, OperationInitiator::default())
            .unwrap_err();
        assert_eq!(err, RequestError::RollbackWithAutoSync("guestbook".into()));
    }

    impl Application {
        fn with_automation(mut self) -> Self {
            self.spec.sync_policy =
                serde_json::from_value(serde_json::json!({"automated": {}})).unwrap();
            self
        }
    }
}
