//! What the API server serves: every kind at its preferred version (for watching and `resolve`)
//! and every served version (for resolving an object's own `apiVersion`).

use std::collections::HashMap;

use kube::Client;
use kube::discovery::{ApiCapabilities, ApiResource, Scope, verbs};

use crate::GroupKind;

/// One served kind at one version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ServedKind {
    pub resource: ApiResource,
    pub namespaced: bool,
    /// Supports both list and watch, so it can be cached.
    pub watchable: bool,
}

impl ServedKind {
    fn new(resource: ApiResource, caps: &ApiCapabilities) -> Self {
        Self {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
            watchable: caps.supports_operation(verbs::LIST)
                && caps.supports_operation(verbs::WATCH),
        }
    }
}

#[derive(Clone, Debug, Default)]
pub(crate) struct Discovered {
    pub preferred: HashMap<GroupKind, ServedKind>,
    /// By (apiVersion, kind).
    pub versions: HashMap<(String, String), ServedKind>,
}

/// Runs discovery (ferry_runtime::discover) and indexes what it found.
pub(crate) async fn discover(client: &Client) -> Result<Discovered, kube::Error> {
    let discovery = ferry_runtime::discover(client).await?;
    let mut found = Discovered::default();
    for group in discovery.groups() {
        for version in group.versions() {
            for (resource, caps) in group.versioned_resources(version) {
                let key = (resource.api_version.clone(), resource.kind.clone());
                found.versions.insert(key, ServedKind::new(resource, &caps));
            }
        }
        // The preferred version wins; kinds it lacks come at their most stable version.
        let by_stability = group.resources_by_stability();
        for (resource, caps) in by_stability
            .into_iter()
            .chain(group.recommended_resources())
        {
            let kind = GroupKind::new(&resource.group, &resource.kind);
            found
                .preferred
                .insert(kind, ServedKind::new(resource, &caps));
        }
    }
    Ok(found)
}
