//! The plugin generator: parameter sets from an HTTP service, as Argo CD's plugin contract
//! describes it. The ConfigMap `configMapRef` of the control namespace names the service
//! (`baseUrl`), its token (`token`: `$key` of argocd-secret, or `$secret:key` of another Secret)
//! and `requestTimeout` (seconds, 30 by default); the service answers
//! `POST <baseUrl>/api/v1/getparams.execute` with `{"output": {"parameters": [...]}}`.

use std::time::Duration;

use ferry_types::application_set::PluginGenerator;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;
use serde_json::{Value, json};

use super::{GeneratorError, Kube};
use crate::params::{Params, flatten};

/// Argo CD's default request timeout of a plugin.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The Secret a `$key` token names without a Secret of its own.
const ARGOCD_SECRET: &str = "argocd-secret";

pub async fn generate(
    plugin: &PluginGenerator,
    appset_name: &str,
    kube: Option<&Kube>,
    go_template: bool,
) -> Result<Vec<Params>, GeneratorError> {
    let kube = kube.ok_or_else(|| {
        GeneratorError::new("the plugin generator reads its ConfigMap from the cluster")
    })?;
    let service = Service::read(kube, &plugin.config_map_ref.name).await?;
    let parameters = &plugin.input.parameters;
    let found = service.list(appset_name, parameters).await?;
    let mut out = Vec::with_capacity(found.len());
    for object in found {
        let Value::Object(object) = object else {
            return Err(GeneratorError::new(format!(
                "the plugin answered a parameter set that is not a map: {object}"
            )));
        };
        let generator = json!({"input": {"parameters": parameters}});
        let mut params = if go_template {
            let mut params = object;
            params.insert("generator".into(), generator);
            params
        } else {
            let mut with_input = object;
            with_input.insert("generator".into(), generator);
            flatten(&with_input)
                .into_iter()
                .map(|(key, value)| (key, Value::String(value)))
                .collect()
        };
        super::append_values(&plugin.values, &mut params, go_template)?;
        out.push(params);
    }
    Ok(out)
}

/// A plugin service as its ConfigMap describes it.
struct Service {
    base_url: String,
    token: String,
    timeout: Duration,
}

impl Service {
    async fn read(kube: &Kube, config_map: &str) -> Result<Self, GeneratorError> {
        let config_maps: Api<ConfigMap> = Api::namespaced(kube.client.clone(), &kube.namespace);
        let data = config_maps
            .get(config_map)
            .await
            .map_err(|e| {
                GeneratorError::new(format!("error fetching ConfigMap {config_map}: {e}"))
            })?
            .data
            .unwrap_or_default();
        let field = |key: &str| data.get(key).filter(|v| !v.is_empty()).cloned();
        let base_url = field("baseUrl").ok_or_else(|| {
            GeneratorError::new(format!("baseUrl not found in ConfigMap {config_map}"))
        })?;
        let token_ref = field("token").ok_or_else(|| {
            GeneratorError::new(format!("token not found in ConfigMap {config_map}"))
        })?;
        let timeout = match field("requestTimeout") {
            None => DEFAULT_TIMEOUT,
            Some(text) => Duration::from_secs(text.parse().map_err(|_| {
                GeneratorError::new(format!(
                    "ConfigMap {config_map}: requestTimeout {text:?} is not a number of seconds"
                ))
            })?),
        };
        Ok(Self {
            base_url,
            token: token(kube, &token_ref).await?,
            timeout,
        })
    }

    async fn list(
        &self,
        appset_name: &str,
        parameters: &serde_json::Map<String, Value>,
    ) -> Result<Vec<Value>, GeneratorError> {
        let url = format!(
            "{}/api/v1/getparams.execute",
            self.base_url.trim_end_matches('/')
        );
        let failed = |e: &dyn std::fmt::Display| {
            GeneratorError::new(format!("error calling plugin {}: {e}", self.base_url))
        };
        let client = reqwest::Client::builder()
            .timeout(self.timeout)
            .build()
            .map_err(|e| failed(&e))?;
        let body = json!({
            "applicationSetName": appset_name,
            "input": {"parameters": parameters},
        });
        let response = client
            .post(&url)
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    failed(&format!(
                        "no answer within {} s (requestTimeout)",
                        self.timeout.as_secs()
                    ))
                } else {
                    failed(&e)
                }
            })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| failed(&e))?;
        if !status.is_success() {
            return Err(failed(&format!(
                "API error with status code {}: {}",
                status.as_u16(),
                text.trim()
            )));
        }
        let mut answer: Value = serde_json::from_str(&text)
            .map_err(|e| failed(&format!("the answer is not JSON: {e}")))?;
        match answer["output"]["parameters"].take() {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(Vec::new()),
            other => Err(failed(&format!("output.parameters is not a list: {other}"))),
        }
    }
}

/// The token a `$key` (of argocd-secret) or `$secret:key` reference names.
async fn token(kube: &Kube, reference: &str) -> Result<String, GeneratorError> {
    let Some(reference) = reference.strip_prefix('$') else {
        return Err(GeneratorError::new(
            "the plugin's token must reference a secret key starting with '$'",
        ));
    };
    let (secret, key) = reference
        .split_once(':')
        .unwrap_or((ARGOCD_SECRET, reference));
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), &kube.namespace);
    let data = secrets
        .get(secret)
        .await
        .map_err(|e| GeneratorError::new(format!("error fetching Secret {secret}: {e}")))?
        .data
        .unwrap_or_default();
    let value = data
        .get(key)
        .ok_or_else(|| GeneratorError::new(format!("key {key} not found in Secret {secret}")))?;
    String::from_utf8(value.0.clone())
        .map_err(|_| GeneratorError::new(format!("key {key} of Secret {secret} is not text")))
}
