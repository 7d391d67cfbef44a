//! The cluster generator: one parameter set per Argo CD cluster Secret whose labels match the
//! selector, plus the in-cluster cluster when no selector is given and no Secret stands for it.

use ferry_types::application_set::ClusterGenerator;
use ferry_types::secrets::{IN_CLUSTER_NAME, IN_CLUSTER_SERVER};
use k8s_openapi::api::core::v1::Secret;
use serde_json::{Value, json};

use kube::core::SelectorExt;

use super::{GeneratorError, label_selector};
use crate::params::{Params, sanitize_name};

/// `secrets` are the control namespace's cluster Secrets.
pub fn generate(
    clusters: &ClusterGenerator,
    secrets: &[Secret],
    go_template: bool,
) -> Result<Vec<Params>, GeneratorError> {
    let selector = clusters.selector.clone().unwrap_or_default();
    let explicit = selector
        .match_labels
        .as_ref()
        .is_some_and(|m| !m.is_empty())
        || selector
            .match_expressions
            .as_ref()
            .is_some_and(|m| !m.is_empty());
    let selector = label_selector(&selector)?;
    let mut matching: Vec<_> = secrets
        .iter()
        .filter(|s| selector.matches(s.metadata.labels.as_ref().unwrap_or(&Default::default())))
        .collect();
    matching.sort_by_key(|s| data(s, "name"));
    let mut out = Vec::new();
    for secret in &matching {
        out.push(cluster_params(secret, go_template));
    }
    let in_cluster_listed = matching
        .iter()
        .any(|s| data(s, "server") == IN_CLUSTER_SERVER);
    if !explicit && !in_cluster_listed {
        let params = json!({
            "name": IN_CLUSTER_NAME,
            "nameNormalized": IN_CLUSTER_NAME,
            "server": IN_CLUSTER_SERVER,
            "project": "",
        });
        out.push(params.as_object().cloned().unwrap_or_default());
    }
    for params in &mut out {
        super::append_values(&clusters.values, params, go_template)?;
    }
    if clusters.flat_list {
        let all = Value::Array(out.into_iter().map(Value::Object).collect());
        let mut params = Params::new();
        params.insert("clusters".into(), all);
        return Ok(vec![params]);
    }
    Ok(out)
}

pub(super) fn data(secret: &Secret, key: &str) -> String {
    secret
        .data
        .as_ref()
        .and_then(|d| d.get(key))
        .map(|v| String::from_utf8_lossy(&v.0).into_owned())
        .or_else(|| {
            secret
                .string_data
                .as_ref()
                .and_then(|d| d.get(key))
                .cloned()
        })
        .unwrap_or_default()
}

fn cluster_params(secret: &Secret, go_template: bool) -> Params {
    let name = data(secret, "name");
    let mut params = Params::new();
    params.insert("nameNormalized".into(), sanitize_name(&name).into());
    params.insert("name".into(), name.into());
    params.insert("server".into(), data(secret, "server").into());
    params.insert("project".into(), data(secret, "project").into());
    let labels = secret.metadata.labels.clone().unwrap_or_default();
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    if go_template {
        let mut meta = Params::new();
        if !annotations.is_empty() {
            meta.insert("annotations".into(), json!(annotations));
        }
        if !labels.is_empty() {
            meta.insert("labels".into(), json!(labels));
        }
        params.insert("metadata".into(), Value::Object(meta));
    } else {
        for (key, value) in annotations {
            params.insert(format!("metadata.annotations.{key}"), value.into());
        }
        for (key, value) in labels {
            params.insert(format!("metadata.labels.{key}"), value.into());
        }
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(name: &str, server: &str, labels: &str) -> Secret {
        serde_yaml::from_str(&format!(
            "metadata:
  name: cluster-{name}
  labels: {{argocd.argoproj.io/secret-type: cluster, {labels}}}
  annotations: {{team: a}}
stringData: {{name: {name}, server: '{server}'}}
"
        ))
        .map(|mut s: Secret| {
            // As the API server returns it: stringData folded into data.
            let data = s.string_data.take().unwrap_or_default();
            s.data = Some(
                data.into_iter()
                    .map(|(k, v)| (k, k8s_openapi::ByteString(v.into_bytes())))
                    .collect(),
            );
            s
        })
        .unwrap()
    }

    fn generator(yaml: &str) -> ClusterGenerator {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn names(params: &[Params]) -> Vec<&str> {
        params.iter().map(|p| p["name"].as_str().unwrap()).collect()
    }

    /// The parameters of Argo CD's cluster generator documentation.
    #[test]
    fn parameters_and_the_local_cluster() {
        let secrets = [
            secret("staging", "https://staging.example", "env: staging"),
            secret("Prod_1", "https://prod.example", "env: prod"),
        ];
        let all = generate(&generator("{}"), &secrets, false).unwrap();
        assert_eq!(names(&all), ["Prod_1", "staging", "in-cluster"]);
        let prod = &all[0];
        assert_eq!(prod["nameNormalized"], "prod-1");
        assert_eq!(prod["server"], "https://prod.example");
        assert_eq!(prod["project"], "");
        assert_eq!(prod["metadata.labels.env"], "prod");
        assert_eq!(prod["metadata.annotations.team"], "a");
        assert_eq!(all[2]["server"], "https://kubernetes.default.svc");

        let go = generate(&generator("{}"), &secrets, true).unwrap();
        assert_eq!(go[0]["metadata"]["labels"]["env"], "prod");
    }

    #[test]
    fn a_selector_leaves_out_the_local_cluster() {
        let secrets = [
            secret("staging", "https://staging.example", "env: staging"),
            secret("prod", "https://prod.example", "env: prod"),
        ];
        let matched = generate(
            &generator("selector: {matchLabels: {env: prod}}\nvalues: {revision: '{{name}}-main'}"),
            &secrets,
            false,
        )
        .unwrap();
        assert_eq!(names(&matched), ["prod"]);
        assert_eq!(matched[0]["values.revision"], "prod-main");
        let expr = generate(
            &generator(
                "selector: {matchExpressions: [{key: env, operator: In, values: [staging]}]}",
            ),
            &secrets,
            false,
        )
        .unwrap();
        assert_eq!(names(&expr), ["staging"]);
    }

    #[test]
    fn a_secret_for_the_local_cluster_replaces_it_and_flat_list() {
        let secrets = [secret("local", IN_CLUSTER_SERVER, "env: dev")];
        let all = generate(&generator("flatList: true"), &secrets, true).unwrap();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0]["clusters"][0]["name"], "local");
        assert_eq!(all[0]["clusters"].as_array().unwrap().len(), 1);
    }
}
