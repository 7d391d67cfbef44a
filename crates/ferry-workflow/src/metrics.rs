//! Prometheus metrics of the workflow controller, served at `/metrics` as ferry-controller
//! serves its own, under Argo Workflows' names (`argo_workflows_…`) where upstream has the
//! metric. Gauges are read at scrape time from the controller's Workflow store, so a deleted
//! workflow leaves the next scrape without bookkeeping; counters and the histogram are updated
//! where things happen.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use ferry_runtime::metrics::Exposition;
use ferry_types::Workflow;
use ferry_types::workflow::Phase;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upstream's default buckets of `operation_duration_seconds`.
const OPERATION_BUCKETS: [f64; 9] = [0.0, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 180.0];

/// Phases the workflow gauge always reports, zero or not, as upstream does.
const PHASES: [Phase; 5] = [
    Phase::Pending,
    Phase::Running,
    Phase::Succeeded,
    Phase::Failed,
    Phase::Error,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CronLabels {
    name: String,
    namespace: String,
}

/// What the collector reads at scrape time.
#[derive(Debug, Default)]
struct Shared {
    workflows: OnceLock<Store<Workflow>>,
    /// Workflows that entered each phase, by namespace and phase.
    entered: Mutex<BTreeMap<(String, &'static str), i64>>,
}

/// The workflow controller's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    shared: Arc<Shared>,
    cron_triggered: Family<CronLabels, Counter>,
    operations: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let cron_triggered = Family::<CronLabels, Counter>::default();
        registry.register(
            "argo_workflows_cronworkflows_triggered",
            "CronWorkflows that started a scheduled run",
            cron_triggered.clone(),
        );
        let operations = Histogram::new(OPERATION_BUCKETS);
        registry.register(
            "argo_workflows_operation_duration_seconds",
            "Time one reconciliation of one workflow took",
            operations.clone(),
        );
        let shared = Arc::new(Shared::default());
        registry.register_collector(Box::new(StoreCollector(shared.clone())));
        Self {
            registry,
            shared,
            cron_triggered,
            operations,
        }
    }
}

impl Metrics {
    /// The gauges read `store` from now on.
    pub fn watch(&self, store: Store<Workflow>) {
        let _ = self.shared.workflows.set(store);
    }

    /// A workflow of `namespace` entered `phase`.
    pub fn entered(&self, namespace: &str, phase: Phase) {
        if let Ok(mut entered) = self.shared.entered.lock() {
            *entered
                .entry((namespace.to_string(), phase.as_str()))
                .or_default() += 1;
        }
    }

    /// CronWorkflow `namespace/name` started a scheduled run.
    pub fn cron_triggered(&self, namespace: &str, name: &str) {
        self.cron_triggered
            .get_or_create(&CronLabels {
                name: name.into(),
                namespace: namespace.into(),
            })
            .inc();
    }

    /// One reconciliation took `duration`.
    pub fn operation(&self, duration: Duration) {
        self.operations.observe(duration.as_secs_f64());
    }
}

impl Exposition for Metrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

/// `argo_workflows_gauge` (workflows by phase) and `ferry_workflow_nodes` (their nodes by
/// type and phase) from the store, and `argo_workflows_total_count`.
#[derive(Debug)]
struct StoreCollector(Arc<Shared>);

impl Collector for StoreCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> fmt::Result {
        let entered = self.0.entered.lock().map(|e| e.clone()).unwrap_or_default();
        // A gauge by type, so that the name stays upstream's: a counter's gets `_total`.
        let mut family = encoder.encode_descriptor(
            "argo_workflows_total_count",
            "Workflows that have entered each phase, by namespace (only ever grows)",
            None,
            MetricType::Gauge,
        )?;
        for ((namespace, phase), count) in entered {
            let labels = [("namespace", namespace.as_str()), ("phase", phase)];
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        let Some(store) = self.0.workflows.get() else {
            return Ok(());
        };
        let (workflows, nodes) = count(&store.state());
        let mut family = encoder.encode_descriptor(
            "argo_workflows_gauge",
            "Workflows currently in the cluster in each phase",
            None,
            MetricType::Gauge,
        )?;
        for (phase, count) in workflows {
            ConstGauge::new(count).encode(family.encode_family(&[("phase", phase)])?)?;
        }
        let mut family = encoder.encode_descriptor(
            "ferry_workflow_nodes",
            "Nodes of the workflows currently in the cluster, by type and phase (ferry's own)",
            None,
            MetricType::Gauge,
        )?;
        for ((type_, phase), count) in nodes {
            let labels = [("type", type_.as_str()), ("phase", phase)];
            ConstGauge::new(count).encode(family.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

/// Nodes by type and phase.
type NodeCounts = BTreeMap<(String, &'static str), i64>;

/// Workflows by phase (every phase, a workflow not yet operated on counted as Pending), and
/// their nodes by type and phase.
fn count(workflows: &[Arc<Workflow>]) -> (BTreeMap<&'static str, i64>, NodeCounts) {
    let mut phases: BTreeMap<&'static str, i64> = PHASES.iter().map(|p| (p.as_str(), 0)).collect();
    let mut nodes = BTreeMap::new();
    for workflow in workflows {
        let status = workflow.status.as_ref();
        let phase = status.and_then(|s| s.phase).unwrap_or(Phase::Pending);
        *phases.entry(phase.as_str()).or_default() += 1;
        for node in status.iter().flat_map(|s| s.nodes.values()) {
            *nodes
                .entry((node.type_.clone(), node.phase.as_str()))
                .or_default() += 1;
        }
    }
    (phases, nodes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_types::workflow::NodeStatus;

    fn workflow(phase: Option<Phase>, nodes: &[(&str, Phase)]) -> Arc<Workflow> {
        let mut workflow = Workflow::default();
        let status = workflow.status.get_or_insert_default();
        status.phase = phase;
        for (i, (type_, phase)) in nodes.iter().enumerate() {
            let node = NodeStatus {
                id: format!("n{i}"),
                type_: type_.to_string(),
                phase: *phase,
                ..NodeStatus::default()
            };
            status.nodes.insert(node.id.clone(), node);
        }
        Arc::new(workflow)
    }

    #[test]
    fn workflows_count_by_phase_and_nodes_by_type_and_phase() {
        let (phases, nodes) = count(&[
            workflow(None, &[]),
            workflow(
                Some(Phase::Running),
                &[("Steps", Phase::Running), ("Pod", Phase::Succeeded)],
            ),
            workflow(Some(Phase::Failed), &[("Pod", Phase::Failed)]),
        ]);
        assert_eq!(phases["Pending"], 1);
        assert_eq!(phases["Running"], 1);
        assert_eq!(phases["Failed"], 1);
        assert_eq!(phases["Succeeded"], 0);
        assert_eq!(nodes[&("Pod".to_string(), "Succeeded")], 1);
        assert_eq!(nodes[&("Pod".to_string(), "Failed")], 1);
        assert_eq!(nodes[&("Steps".to_string(), "Running")], 1);
    }

    #[test]
    fn counters_and_histogram_render_under_upstreams_names() {
        let metrics = Metrics::default();
        metrics.entered("ci", Phase::Succeeded);
        metrics.cron_triggered("ci", "nightly");
        metrics.operation(Duration::from_millis(20));
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"argo_workflows_total_count{namespace="ci",phase="Succeeded"} 1"#),
            "{text}"
        );
        assert!(
            text.contains(
                r#"argo_workflows_cronworkflows_triggered_total{name="nightly",namespace="ci"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains("argo_workflows_operation_duration_seconds_count 1"),
            "{text}"
        );
    }
}
