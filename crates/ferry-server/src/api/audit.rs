//! The audit trail: every mutating call, sync and rollback becomes a Kubernetes Event on the
//! object it concerns (the Application, the AppProject…), naming the caller, as Argo CD's API
//! server records them, and an info line in the log.

use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use super::authn::Caller;

/// Publishes audit Events as `ferry-server`.
#[derive(Clone)]
pub struct Audit {
    client: kube::Client,
    reporter: Reporter,
}

impl Audit {
    pub fn new(client: kube::Client) -> Self {
        let reporter = Reporter {
            controller: "ferry-server".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self { client, reporter }
    }

    /// Records that `caller` did `action` (`reason` is the Event's PascalCase reason, e.g.
    /// `OperationStarted`) to `object`: "`<caller>` `<message>`". A failure to record is logged
    /// and does not fail the call it audits; the change itself already happened.
    pub async fn record<K>(&self, caller: &Caller, object: &K, reason: &str, message: &str)
    where
        K: Resource<DynamicType = ()>,
    {
        let user = caller.name();
        let name = object.meta().name.as_deref().unwrap_or_default();
        tracing::info!(%user, kind = %K::kind(&()), name, reason, "audit: {message}");
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(format!("{user} {message}")),
            action: reason.into(),
            secondary: None,
        };
        // A recorder per record: one kept across calls merges Events of the same reason on an
        // object into one series with the first one's note ("admin created project" would
        // stand for a token created next), and the trail needs every call's own.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(err) = recorder.publish(&event, &object.object_ref(&())).await {
            tracing::warn!(kind = %K::kind(&()), name, reason, error = %err, "recording an audit event");
        }
    }
}
