//! What rendering needs to know about the Application itself.

/// Facts about the Application and its destination that rendering depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppContext {
    /// Application name: Helm's default release name and `ARGOCD_APP_NAME`.
    pub name: String,
    /// Destination namespace: Helm's default `--namespace` and `ARGOCD_APP_NAMESPACE`.
    pub namespace: String,
    /// Kubernetes version of the destination (`--kube-version`, `KUBE_VERSION`); may be empty.
    pub kube_version: String,
    /// API versions of the destination (`--api-versions`, `KUBE_API_VERSIONS`).
    pub api_versions: Vec<String>,
}
