//! `argocd_app_k8s_request_total`: a tower layer on the kube client's service stack, so every
//! request of every API (watches, discovery, applies, status writes) is counted by verb, resource
//! and response code, told from the request's method and path as the API server tells them.

use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::{Method, Request, Response, Uri};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tower::{Layer, Service};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(super) struct Labels {
    server: String,
    verb: String,
    resource_kind: String,
    response_code: String,
}

/// Builds Kubernetes clients whose requests are counted.
#[derive(Clone)]
pub struct KubeClients(pub(super) Family<Labels, Counter>);

impl KubeClients {
    /// A client for `config` whose requests are counted under `server` (the cluster's URL).
    pub fn client(&self, config: kube::Config, server: &str) -> kube::Result<kube::Client> {
        let layer = KubeRequestsLayer::new(self.0.clone(), server);
        Ok(kube::client::ClientBuilder::try_from(config)?
            .with_layer(&layer)
            .build())
    }
}

/// Counts the requests of one cluster's client.
#[derive(Clone)]
struct KubeRequestsLayer {
    requests: Family<Labels, Counter>,
    server: String,
}

impl KubeRequestsLayer {
    fn new(requests: Family<Labels, Counter>, server: &str) -> Self {
        Self {
            requests,
            server: server.to_string(),
        }
    }
}

impl<S> Layer<S> for KubeRequestsLayer {
    type Service = KubeRequests<S>;

    fn layer(&self, inner: S) -> Self::Service {
        KubeRequests {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone)]
struct KubeRequests<S> {
    inner: S,
    layer: KubeRequestsLayer,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for KubeRequests<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (verb, resource_kind) = classify(request.method(), request.uri());
        let mut labels = Labels {
            server: self.layer.server.clone(),
            verb: verb.to_string(),
            resource_kind,
            response_code: String::new(),
        };
        let requests = self.layer.requests.clone();
        let response = self.inner.call(request);
        Box::pin(async move {
            let result = response.await;
            // A watch counts when its response starts, not when the stream ends.
            labels.response_code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                // No response at all (connection refused, timeout), as client-go labels it.
                Err(_) => "<error>".to_string(),
            };
            requests.get_or_create(&labels).inc();
            result
        })
    }
}

/// The Kubernetes verb and the resource (`resource.group`, `/subresource` appended) of a
/// request, following the API server's own request-info rules. Paths outside any API group
/// version (`/version`, `/api`, `/apis/apps/v1`, `/openapi/v2`) are `discovery`.
fn classify(method: &Method, uri: &Uri) -> (&'static str, String) {
    let parts: Vec<&str> = uri
        .path()
        .trim_matches('/')
        .split('/')
        .filter(|p| !p.is_empty())
        .collect();
    let (group, rest): (&str, &[&str]) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (group, rest),
        _ => ("", &[]),
    };
    if rest.is_empty() {
        return (plain_verb(method), "discovery".into());
    }
    // `namespaces/<ns>/<resource>...` names a namespaced resource; `namespaces/<ns>` and its
    // `status` and `finalize` subresources are the Namespace itself.
    let rest = match rest {
        ["namespaces", _namespace, resource, tail @ ..]
            if !matches!(*resource, "status" | "finalize") =>
        {
            let mut within = vec![*resource];
            within.extend_from_slice(tail);
            within
        }
        _ => rest.to_vec(),
    };
    let (resource, name, subresource) = (rest[0], rest.get(1), rest.get(2));
    let mut kind = if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    };
    if let Some(subresource) = subresource {
        kind = format!("{kind}/{subresource}");
    }
    let verb = match *method {
        Method::GET | Method::HEAD if name.is_some() => "get",
        Method::GET | Method::HEAD if is_watch(uri) => "watch",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if name.is_some() => "delete",
        Method::DELETE => "deletecollection",
        _ => plain_verb(method),
    };
    (verb, kind)
}

fn is_watch(uri: &Uri) -> bool {
    uri.query().is_some_and(|query| {
        query
            .split('&')
            .any(|pair| matches!(pair, "watch=true" | "watch=1"))
    })
}

fn plain_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().unwrap())
    }

    #[test]
    fn verbs_and_resources_are_told_as_the_api_server_tells_them() {
        let cases = [
            (Method::GET, "/api/v1/namespaces/web/pods/p1", "get", "pods"),
            (
                Method::GET,
                "/api/v1/namespaces/web/pods?limit=500",
                "list",
                "pods",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/web/pods?resourceVersion=1&watch=true&timeoutSeconds=290",
                "watch",
                "pods",
            ),
            (Method::GET, "/api/v1/nodes", "list", "nodes"),
            (Method::GET, "/api/v1/namespaces", "list", "namespaces"),
            (Method::GET, "/api/v1/namespaces/web", "get", "namespaces"),
            (
                Method::PUT,
                "/api/v1/namespaces/web/finalize",
                "update",
                "namespaces/finalize",
            ),
            (Method::POST, "/api/v1/namespaces", "create", "namespaces"),
            (
                Method::PATCH,
                "/apis/apps/v1/namespaces/web/deployments/guestbook?fieldManager=ferry&dryRun=All",
                "patch",
                "deployments.apps",
            ),
            (
                Method::PATCH,
                "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/guestbook/status",
                "patch",
                "applications.argoproj.io/status",
            ),
            (
                Method::DELETE,
                "/apis/apps/v1/namespaces/web/deployments/guestbook",
                "delete",
                "deployments.apps",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/web/configmaps",
                "deletecollection",
                "configmaps",
            ),
            (
                Method::GET,
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions?watch=1",
                "watch",
                "customresourcedefinitions.apiextensions.k8s.io",
            ),
            (Method::GET, "/version", "get", "discovery"),
            (Method::GET, "/api", "get", "discovery"),
            (Method::GET, "/api/v1", "get", "discovery"),
            (Method::GET, "/apis", "get", "discovery"),
            (Method::GET, "/apis/apps/v1", "get", "discovery"),
            (Method::GET, "/openapi/v2", "get", "discovery"),
        ];
        for (method, uri, verb, kind) in cases {
            assert_eq!(check(method, uri), (verb, kind.to_string()), "{uri}");
        }
    }

    #[tokio::test]
    async fn every_request_is_counted_with_its_response_code() {
        let requests: Family<Labels, Counter> = Family::default();
        let layer = KubeRequestsLayer::new(requests.clone(), "https://kubernetes.default.svc");
        let mut service = layer.layer(tower::service_fn(|request: Request<()>| async move {
            let status = if request.uri().path().ends_with("missing") {
                404
            } else {
                200
            };
            Ok::<_, std::convert::Infallible>(Response::builder().status(status).body(()).unwrap())
        }));
        for path in [
            "/api/v1/namespaces/web/configmaps/present",
            "/api/v1/namespaces/web/configmaps/missing",
            "/api/v1/namespaces/web/configmaps/present",
        ] {
            let request = Request::get(path).body(()).unwrap();
            service.call(request).await.unwrap();
        }
        let labels = |code: &str| Labels {
            server: "https://kubernetes.default.svc".into(),
            verb: "get".into(),
            resource_kind: "configmaps".into(),
            response_code: code.into(),
        };
        assert_eq!(requests.get(&labels("200")).map(|c| c.get()), Some(2));
        assert_eq!(requests.get(&labels("404")).map(|c| c.get()), Some(1));
    }
}
