//! Prometheus metrics under Argo CD Image Updater's names, served at `/metrics`. Apps
//! configured by annotations are counted with empty `image_updater_cr_*` labels.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::select::Origin;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CrLabels {
    pub image_updater_cr_name: String,
    pub image_updater_cr_namespace: String,
}

impl From<&Origin> for CrLabels {
    fn from(origin: &Origin) -> Self {
        match origin {
            Origin::Annotations => CrLabels {
                image_updater_cr_name: String::new(),
                image_updater_cr_namespace: String::new(),
            },
            Origin::ImageUpdater { namespace, name } => CrLabels {
                image_updater_cr_name: name.clone(),
                image_updater_cr_namespace: namespace.clone(),
            },
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RegistryLabels {
    pub registry: String,
}

/// The updater's metrics.
pub struct Metrics {
    registry: Mutex<Registry>,
    pub applications_watched: Family<CrLabels, Gauge>,
    pub images_watched: Family<CrLabels, Gauge>,
    pub images_updated: Family<CrLabels, Counter>,
    pub images_errors: Family<CrLabels, Counter>,
    pub registry_requests: Family<RegistryLabels, Counter>,
    pub registry_requests_failed: Family<RegistryLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let metrics = Metrics {
            registry: Mutex::new(Registry::default()),
            applications_watched: Family::default(),
            images_watched: Family::default(),
            images_updated: Family::default(),
            images_errors: Family::default(),
            registry_requests: Family::default(),
            registry_requests_failed: Family::default(),
        };
        // prometheus-client appends `_total` to counters; upstream's gauges carry it too.
        registry.register(
            "argocd_image_updater_applications_watched_total",
            "The total number of applications watched by Argo CD Image Updater CR",
            metrics.applications_watched.clone(),
        );
        registry.register(
            "argocd_image_updater_images_watched_total",
            "Number of images watched by Argo CD Image Updater CR",
            metrics.images_watched.clone(),
        );
        registry.register(
            "argocd_image_updater_images_updated",
            "Number of images updated by Argo CD Image Updater CR",
            metrics.images_updated.clone(),
        );
        registry.register(
            "argocd_image_updater_images_errors",
            "Number of errors reported by Argo CD Image Updater CR",
            metrics.images_errors.clone(),
        );
        registry.register(
            "argocd_image_updater_registry_requests",
            "The total number of requests to this endpoint",
            metrics.registry_requests.clone(),
        );
        registry.register(
            "argocd_image_updater_registry_requests_failed",
            "The number of failed requests to this endpoint",
            metrics.registry_requests_failed.clone(),
        );
        *metrics.registry.lock().expect("metrics registry") = registry;
        metrics
    }
}

impl Metrics {
    /// The Prometheus text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().expect("metrics registry");
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String");
        out
    }
}

async fn scrape(State(metrics): State<Arc<Metrics>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics.encode(),
    )
}

/// `/metrics` and `/healthz`.
pub fn router(metrics: Arc<Metrics>) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(metrics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_names() {
        let metrics = Metrics::default();
        let labels = CrLabels::from(&Origin::ImageUpdater {
            namespace: "argocd".into(),
            name: "iu".into(),
        });
        metrics.images_updated.get_or_create(&labels).inc();
        metrics.applications_watched.get_or_create(&labels).set(3);
        metrics
            .registry_requests
            .get_or_create(&RegistryLabels {
                registry: "ghcr.io".into(),
            })
            .inc_by(7);
        let text = metrics.encode();
        assert!(text.contains(
            "argocd_image_updater_images_updated_total{image_updater_cr_name=\"iu\",image_updater_cr_namespace=\"argocd\"} 1"
        ), "{text}");
        assert!(
            text.contains("argocd_image_updater_applications_watched_total{"),
            "{text}"
        );
        assert!(
            text.contains("argocd_image_updater_registry_requests_total{registry=\"ghcr.io\"} 7"),
            "{text}"
        );
    }
}
