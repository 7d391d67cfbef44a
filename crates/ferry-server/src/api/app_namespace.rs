//! Applications outside the control namespace (`--application-namespaces`). Argo CD's clients
//! name such an app by `{name}` and the query parameter `appNamespace`; before routing, that
//! becomes one `{name}` path segment `<namespace>/<name>` (percent-encoded), so every app route
//! receives the app's whole name, and [`locate`] splits it again.

use axum::extract::Request;
use axum::http::Uri;

use super::error::{ApiError, Code};
use super::state::AppState;

/// The route prefixes whose next path segment names an Application.
const APP_ROUTES: [&str; 2] = ["/api/v1/applications/", "/api/v1/stream/applications/"];

/// Folds `appNamespace` into the `{name}` segment of an app route.
pub fn qualify(mut request: Request) -> Request {
    let uri = request.uri();
    let Some(query) = uri.query() else {
        return request;
    };
    let Some(namespace) = url::form_urlencoded::parse(query.as_bytes())
        .find(|(key, value)| key == "appNamespace" && !value.is_empty())
        .map(|(_, value)| value.into_owned())
    else {
        return request;
    };
    let path = uri.path();
    let Some((prefix, rest)) = APP_ROUTES
        .iter()
        .find_map(|prefix| Some((*prefix, path.strip_prefix(prefix)?)))
    else {
        return request;
    };
    if rest.is_empty() || rest.starts_with('/') {
        return request;
    }
    let encoded: String = url::form_urlencoded::byte_serialize(namespace.as_bytes()).collect();
    let rewritten = format!("{prefix}{encoded}%2F{rest}?{query}");
    if let Ok(uri) = rewritten.parse::<Uri>() {
        *request.uri_mut() = uri;
    }
    request
}

/// The namespace and name of the app a route names: `<namespace>/<name>`, or a name in the
/// control namespace. A namespace the server does not serve is refused, as Argo CD's
/// `NamespaceNotPermittedError`.
pub fn locate<'a>(state: &'a AppState, name: &'a str) -> Result<(&'a str, &'a str), ApiError> {
    let (namespace, name) = name.split_once('/').unwrap_or((state.namespace(), name));
    if !state.app_namespaces().allows(namespace) {
        return Err(ApiError::new(
            Code::PermissionDenied,
            format!("namespace '{namespace}' is not permitted"),
        ));
    }
    Ok((namespace, name))
}

/// Argo CD's `RBACName`: `<project>/<name>` in the control namespace,
/// `<project>/<namespace>/<name>` elsewhere.
pub fn rbac_name(control: &str, project: &str, namespace: &str, name: &str) -> String {
    if namespace.is_empty() || namespace == control {
        format!("{project}/{name}")
    } else {
        format!("{project}/{namespace}/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(uri: &str) -> String {
        let request = Request::builder()
            .uri(uri)
            .body(Default::default())
            .unwrap();
        qualify(request).uri().to_string()
    }

    #[test]
    fn app_namespace_becomes_part_of_the_name_segment() {
        assert_eq!(
            path("/api/v1/applications/web/sync?appNamespace=team-a"),
            "/api/v1/applications/team-a%2Fweb/sync?appNamespace=team-a"
        );
        assert_eq!(
            path("/api/v1/applications/web?appNamespace=team-a&refresh=hard"),
            "/api/v1/applications/team-a%2Fweb?appNamespace=team-a&refresh=hard"
        );
        assert_eq!(
            path("/api/v1/stream/applications/web/resource-tree?appNamespace=t"),
            "/api/v1/stream/applications/t%2Fweb/resource-tree?appNamespace=t"
        );
        for unchanged in [
            "/api/v1/applications?appNamespace=team-a",
            "/api/v1/applications/web?appNamespace=",
            "/api/v1/applications/web",
            "/api/v1/projects/web?appNamespace=team-a",
        ] {
            assert_eq!(path(unchanged), unchanged);
        }
    }

    #[test]
    fn rbac_names_as_argo_cd_writes_them() {
        assert_eq!(rbac_name("argocd", "p", "argocd", "web"), "p/web");
        assert_eq!(rbac_name("argocd", "p", "", "web"), "p/web");
        assert_eq!(rbac_name("argocd", "p", "team-a", "web"), "p/team-a/web");
    }
}
