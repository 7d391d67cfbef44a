//! Argo CD Applications as users write them (`ferry app create -f`, the API server's bodies,
//! the controller's watch): `ferry_types::Application` from YAML and JSON, the accessors the
//! controller and the CLI use, operation requests, and a JSON round trip (what ferry writes it
//! must read back unchanged).

#![no_main]

use ferry_types::Application;
use ferry_types::application::{Operation, OperationInitiator, SyncOperation};
use libfuzzer_sys::fuzz_target;

const RETRY_COUNTS: [i64; 7] = [i64::MIN, -1, 0, 1, 10, 1_000, i64::MAX];

fn exercise(app: &Application) {
    let _ = (
        app.project(),
        app.is_multi_source(),
        app.revision_history_limit(),
    );
    let _ = (
        app.refresh_requested(),
        app.cascade_policy(),
        app.unknown_fields(),
    );
    for source in app.sources() {
        let _ = (source.explicit_type(), source.is_chart(), source.describe());
        let _ = source.unknown_fields();
        if let Some(helm) = &source.helm {
            let _ = helm.inline_values_yaml();
        }
        if let Some(kustomize) = &source.kustomize {
            for replica in &kustomize.replicas {
                let _ = replica.count();
            }
        }
    }
    let retries = [
        app.spec.sync_policy.as_ref().and_then(|p| p.retry.as_ref()),
        app.operation.as_ref().and_then(|o| o.retry.as_ref()),
    ];
    for retry in retries.into_iter().flatten() {
        for count in RETRY_COUNTS {
            let _ = retry.allows_retry(count);
            let _ = retry.backoff_delay(count);
        }
    }
    if let Some(policy) = &app.spec.sync_policy {
        let _ = policy.is_automated();
    }

    // Requests as the API server and the CLI make them.
    for revision in ["", "main", "0123456789abcdef0123456789abcdef01234567"] {
        let mut requested = app.clone();
        let sync = Operation {
            sync: Some(SyncOperation {
                revision: revision.to_string(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let _ = requested.request_operation(&sync);
    }
    let history = app
        .status
        .as_ref()
        .map(|s| s.history.as_slice())
        .unwrap_or_default();
    for id in history
        .iter()
        .map(|entry| entry.id)
        .chain([0, -1, i64::MAX])
    {
        for dry_run in [false, true] {
            let _ = app.rollback_operation(id, true, dry_run, OperationInitiator::default());
        }
    }

    // What ferry writes (status patches, `-o json`, API answers) it reads back as it was.
    let written = serde_json::to_value(app).expect("an Application always serializes");
    let read: Application = serde_json::from_value(written.clone())
        .unwrap_or_else(|err| panic!("cannot read back {written}: {err}"));
    let rewritten = serde_json::to_value(&read).expect("an Application always serializes");
    assert_eq!(
        written, rewritten,
        "JSON round trip changed the Application"
    );
    let _ = serde_yaml::to_string(app);
}

fuzz_target!(|data: &[u8]| {
    let Some(text) = ferry_fuzz::text(data) else {
        return;
    };
    if let Ok(app) = serde_yaml::from_str::<Application>(text) {
        exercise(&app);
    }
    if let Ok(app) = serde_json::from_str::<Application>(text) {
        exercise(&app);
    }
});
