//! The cluster-decision-resource generator: one parameter set per cluster that a duck-typed
//! resource of the control namespace lists in its status (Open Cluster Management's
//! PlacementDecision, for one), as Argo CD reads it. The ConfigMap `configMapRef` says which
//! resource (`apiVersion`, `kind` as the resource's plural name), where its list is
//! (`statusListKey`, `clusters` by default) and which key of an entry is the cluster's name
//! (`matchKey`). Entries naming no known cluster are skipped.

use ferry_types::application_set::DuckTypeGenerator;
use ferry_types::secrets::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use ferry_types::split_api_version;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use kube::api::{DynamicObject, ListParams};
use kube::core::{ApiResource, GroupVersionKind, Selector};
use serde_json::Value;

use super::clusters::data;
use super::{GeneratorError, Kube};
use crate::params::{Params, go_format};

pub async fn generate(
    duck: &DuckTypeGenerator,
    kube: Option<&Kube>,
    cluster_secrets: &[Secret],
    go_template: bool,
) -> Result<Vec<Params>, GeneratorError> {
    let kube = kube.ok_or_else(|| {
        GeneratorError::new(
            "the clusterDecisionResource generator reads its resource from the cluster",
        )
    })?;
    let config_maps: Api<ConfigMap> = Api::namespaced(kube.client.clone(), &kube.namespace);
    let data = config_maps
        .get(&duck.config_map_ref)
        .await
        .map_err(|e| GeneratorError::new(format!("error reading configMapRef: {e}")))?
        .data
        .unwrap_or_default();
    let field = |key: &str| data.get(key).map(String::as_str).unwrap_or_default();
    let (api_version, plural) = (field("apiVersion"), field("kind"));
    let (group, version) = split_api_version(api_version);
    if group.is_empty() || plural.is_empty() {
        return Err(GeneratorError::new(
            "there is a problem with the apiVersion, kind or resourceName provided",
        ));
    }
    let selector = duck.label_selector.clone().unwrap_or_default();
    let has_selector = selector
        .match_labels
        .as_ref()
        .is_some_and(|m| !m.is_empty())
        || selector
            .match_expressions
            .as_ref()
            .is_some_and(|m| !m.is_empty());
    if duck.name.is_empty() != has_selector {
        return Err(GeneratorError::new(
            "there is a problem with the definition of the ClusterDecisionResource generator: \
             set either name or labelSelector",
        ));
    }
    let params = if duck.name.is_empty() {
        let selector = Selector::try_from(selector)
            .map_err(|e| GeneratorError::new(format!("error parsing label selector: {e}")))?;
        ListParams::default().labels_from(&selector)
    } else {
        ListParams::default().fields(&format!("metadata.name={}", duck.name))
    };
    let resource =
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, ""), plural);
    let api: Api<DynamicObject> =
        Api::namespaced_with(kube.client.clone(), &kube.namespace, &resource);
    let found = api
        .list(&params)
        .await
        .map_err(|e| GeneratorError::new(format!("failed to get dynamic resources: {e}")))?
        .items;
    if found.is_empty() {
        return Err(GeneratorError::new("no clusterDecisionResources found"));
    }
    let list_key = match field("statusListKey") {
        "" => "clusters",
        key => key,
    };
    let match_key = field("matchKey");
    if match_key.is_empty() {
        return Ok(Vec::new());
    }
    let clusters = known_clusters(cluster_secrets);
    let mut out = Vec::new();
    for object in &found {
        let decisions = object.data["status"][list_key]
            .as_array()
            .into_iter()
            .flatten();
        for decision in decisions {
            let Value::Object(decision) = decision else {
                continue;
            };
            let Some(wanted) = decision
                .get(match_key)
                .map(go_format)
                .filter(|n| !n.is_empty())
            else {
                continue;
            };
            let Some((name, server)) = clusters.iter().find(|(name, _)| *name == wanted) else {
                continue;
            };
            let mut params = Params::new();
            params.insert("name".into(), Value::String(name.clone()));
            params.insert("server".into(), Value::String(server.clone()));
            for (key, value) in decision {
                params.insert(key.clone(), Value::String(go_format(value)));
            }
            super::append_values(&duck.values, &mut params, go_template)?;
            out.push(params);
        }
    }
    Ok(out)
}

/// `(name, server)` of every cluster Secret, and the in-cluster cluster unless a Secret names
/// its server.
fn known_clusters(secrets: &[Secret]) -> Vec<(String, String)> {
    let mut clusters: Vec<_> = secrets
        .iter()
        .map(|secret| (data(secret, "name"), data(secret, "server")))
        .collect();
    if !clusters
        .iter()
        .any(|(_, server)| server == IN_CLUSTER_SERVER)
    {
        clusters.push((IN_CLUSTER_NAME.to_string(), IN_CLUSTER_SERVER.to_string()));
    }
    clusters
}
