//! What rendering needs to know about the Application itself.

use crate::kustomize::KustomizeOptions;

/// Facts about the Application and its destination that rendering depends on.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct AppContext {
    /// Application name: Helm's default release name and `ARGOCD_APP_NAME`.
    pub name: String,
    /// The app's AppProject: repositories and registries are reached with the credentials of
    /// this project and the global ones, never another project's (empty: global ones only).
    /// Not part of what a render is cached under: the access fingerprints of the credentials
    /// are, so apps of projects sharing a credential share cached renders.
    #[serde(skip)]
    pub project: String,
    /// Destination namespace: Helm's default `--namespace` and `ARGOCD_APP_NAMESPACE`.
    pub namespace: String,
    /// Kubernetes version of the destination (`--kube-version`, `KUBE_VERSION`); may be empty.
    pub kube_version: String,
    /// API versions of the destination (`--api-versions`, `KUBE_API_VERSIONS`).
    pub api_versions: Vec<String>,
    /// Render again instead of reusing a cached render (Argo CD's hard refresh); the new
    /// render replaces the cached one. Not part of what a render is cached under.
    #[serde(skip)]
    pub hard_refresh: bool,
    /// `kustomize build` settings from `argocd-cm` (Argo CD sends them with each manifest
    /// request, so a changed ConfigMap applies to the next render).
    pub kustomize: KustomizeOptions,
}

impl AppContext {
    /// Sets what Helm sees as `.Capabilities` of the destination, as Argo CD passes them: the
    /// server's version, and every served `group/version` and `group/version/Kind` (core kinds
    /// as `v1` and `v1/Kind`).
    pub fn with_capabilities(
        mut self,
        kube_version: String,
        served: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut api_versions = std::collections::BTreeSet::new();
        for (api_version, kind) in served {
            api_versions.insert(format!("{api_version}/{kind}"));
            api_versions.insert(api_version);
        }
        self.kube_version = kube_version;
        self.api_versions = api_versions.into_iter().collect();
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_list_group_versions_and_kinds_once() {
        let served = [
            ("apps/v1".to_string(), "Deployment".to_string()),
            ("apps/v1".to_string(), "StatefulSet".to_string()),
            ("v1".to_string(), "ConfigMap".to_string()),
        ];
        let context = AppContext::default().with_capabilities("v1.34.4".into(), served);
        assert_eq!(context.kube_version, "v1.34.4");
        assert_eq!(
            context.api_versions,
            [
                "apps/v1",
                "apps/v1/Deployment",
                "apps/v1/StatefulSet",
                "v1",
                "v1/ConfigMap"
            ]
        );
    }
}
