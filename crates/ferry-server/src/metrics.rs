//! Prometheus metrics of the API server, served at `/metrics` on a listener of their own (see
//! docs/metrics.md): requests and their latency by route template, logins, webhook deliveries.
//!
//! Requests are labelled with the route they matched (`/api/v1/applications/{name}`), never the
//! raw path, so neither an app name, a user nor a token in a URL becomes a label, and the number
//! of series stays bounded whatever clients send.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use ferry_runtime::metrics::Exposition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// From a cached read (a millisecond) to a slow Kubernetes write.
const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The route of a request that matched none.
const UNMATCHED: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    method: String,
    route: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    provider: String,
    result: String,
}

/// What became of a webhook delivery.
#[derive(Clone, Copy, Debug)]
pub enum WebhookResult {
    /// A verified push; the apps it concerns were asked to refresh.
    Accepted,
    /// Genuine, but nothing to act on (a ping, another event).
    Ignored,
    /// Unsigned, badly signed or malformed.
    Refused,
    /// Verified, but the refreshes failed.
    Failed,
}

impl WebhookResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Ignored => "ignored",
            Self::Refused => "refused",
            Self::Failed => "failed",
        }
    }
}

/// The API server's metrics.
pub struct ApiMetrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<RequestLabels, Histogram, fn() -> Histogram>,
    logins: Family<LoginLabels, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
}

impl Default for ApiMetrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        let requests = Family::default();
        registry.register(
            "ferry_api_requests",
            "Number of API requests, by method, route template and status code",
            requests.clone(),
        );
        let durations: Family<RequestLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS));
        registry.register(
            "ferry_api_request_duration_seconds",
            "API request latency in seconds, until the response headers",
            durations.clone(),
        );
        let logins = Family::default();
        registry.register(
            "argocd_login_request",
            "Number of password login requests",
            logins.clone(),
        );
        let webhooks = Family::default();
        registry.register(
            "ferry_webhook_requests",
            "Number of Git webhook deliveries, by provider and result",
            webhooks.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            logins,
            webhooks,
        }
    }
}

impl Exposition for ApiMetrics {
    fn registry(&self) -> &Registry {
        &self.registry
    }
}

impl ApiMetrics {
    pub fn login(&self, succeeded: bool) {
        let status = if succeeded { "success" } else { "failure" };
        self.logins
            .get_or_create(&LoginLabels {
                status: status.into(),
            })
            .inc();
    }

    /// `provider` is one of the known providers or `unknown`, so it stays bounded.
    pub fn webhook(&self, provider: &str, result: WebhookResult) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                provider: provider.into(),
                result: result.as_str().into(),
            })
            .inc();
    }

    fn request(&self, labels: &RequestLabels, started: Instant) {
        self.requests.get_or_create(labels).inc();
        self.durations
            .get_or_create(labels)
            .observe(started.elapsed().as_secs_f64());
    }
}

/// Middleware recording every request under its route template; layered over the whole API
/// router by [`crate::api::router`].
pub async fn track(
    State(metrics): State<Arc<ApiMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_string();
    let method = method_label(request.method()).to_string();
    let response = next.run(request).await;
    let labels = RequestLabels {
        method,
        route,
        code: response.status().as_u16().to_string(),
    };
    metrics.request(&labels, started);
    response
}

/// Standard methods by name; anything a client makes up counts as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt;

    #[tokio::test]
    async fn requests_are_counted_by_route_template_and_rendered() {
        let metrics = Arc::new(ApiMetrics::default());
        let app = Router::new()
            .route("/api/v1/applications/{name}", get(|| async { "ok" }))
            .layer(from_fn_with_state(metrics.clone(), track));
        for uri in [
            "/api/v1/applications/guestbook",
            "/api/v1/applications/secret-name",
            "/no/such/path/for/alice",
        ] {
            let request = axum::http::Request::get(uri).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let request = axum::http::Request::builder()
            .method(Method::from_bytes(b"BREW").unwrap())
            .uri("/api/v1/applications/x")
            .body(Body::empty())
            .unwrap();
        app.oneshot(request).await.unwrap();
        metrics.login(false);
        metrics.webhook("github", WebhookResult::Refused);

        let text = metrics.render().unwrap();
        for line in [
            "# TYPE ferry_api_requests_total counter",
            r#"ferry_api_requests_total{method="GET",route="/api/v1/applications/{name}",code="200"} 2"#,
            r#"ferry_api_requests_total{method="GET",route="unmatched",code="404"} 1"#,
            r#"ferry_api_requests_total{method="other",route="/api/v1/applications/{name}",code="405"} 1"#,
            "# TYPE ferry_api_request_duration_seconds histogram",
            r#"ferry_api_request_duration_seconds_count{method="GET",route="/api/v1/applications/{name}",code="200"} 2"#,
            r#"argocd_login_request_total{status="failure"} 1"#,
            r#"ferry_webhook_requests_total{provider="github",result="refused"} 1"#,
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line}\n{text}");
        }
        for raw in ["guestbook", "secret-name", "alice", "BREW"] {
            assert!(!text.contains(raw), "{raw} in\n{text}");
        }
    }
}
