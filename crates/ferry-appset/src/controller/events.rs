//! Kubernetes Events on the ApplicationSet for each Application it creates, updates or deletes,
//! as Argo CD's controller records them ("Created Application \"x\""); unchanged ones make none.

use ferry_types::ApplicationSet;
use kube::Resource;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tracing::warn;

#[derive(Clone)]
pub struct Events {
    client: kube::Client,
    reporter: Reporter,
}

impl Events {
    pub fn new(client: kube::Client) -> Self {
        let reporter = Reporter {
            controller: "ferry-applicationset-controller".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Self { client, reporter }
    }

    /// A Normal Event with `reason` and `note` on `appset`. A failure is logged: the change it
    /// reports already happened.
    pub async fn record(&self, appset: &ApplicationSet, reason: &str, note: &str) {
        let event = Event {
            type_: EventType::Normal,
            reason: reason.into(),
            note: Some(note.into()),
            action: reason.into(),
            secondary: None,
        };
        // A recorder per Event: one kept across calls merges Events of a reason into one series
        // with the first one's note.
        let recorder = Recorder::new(self.client.clone(), self.reporter.clone());
        if let Err(err) = recorder.publish(&event, &appset.object_ref(&())).await {
            warn!(applicationset = ?appset.metadata.name, reason, "recording an Event: {err}");
        }
    }
}
