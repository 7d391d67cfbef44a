//! An `http` template's node. Upstream sends the request from its agent pod; ferry sends it
//! from the controller (reqwest), like a resource template: a pass emits a [`Request`] for a
//! Pending HTTP node, the controller [`perform`]s it and records the outcome. The request is
//! sent again if that record is lost (the controller stopped in between).

use std::collections::BTreeMap;
use std::time::Duration;

use ferry_types::workflow::{HttpTemplate, Outputs, Phase, Template};
use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use super::resource::Report;
use super::{Call, Op};
use crate::expr::{Scope, substitute};
use crate::http_condition::{self, Exchange};

/// Upstream's documented default of `timeoutSeconds`.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The most of a response body kept as `outputs.result`: it lives in the workflow's status.
const MAX_BODY: usize = 256 * 1024;

/// One HTTP node's request for the controller.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub node_id: String,
    /// Where `valueFrom.secretKeyRef` Secrets are read.
    pub namespace: String,
    /// The template with its tags substituted.
    pub http: HttpTemplate,
}

impl Op<'_> {
    pub(super) fn execute_http(
        &mut self,
        id: &str,
        call: &Call,
        template: &Template,
        scope: &Scope,
    ) {
        if !self.may_run(id) || self.phase(id) != Phase::Pending {
            return;
        }
        let Some(http) = &template.http else {
            return;
        };
        let mut scope = scope.clone();
        scope.insert("node.name".into(), call.name.clone());
        match substituted(http, &scope) {
            Ok(http) => self.outcome.http.push(Request {
                node_id: id.into(),
                namespace: self.workflow.metadata.namespace.clone().unwrap_or_default(),
                http,
            }),
            Err(message) => self.mark(id, Phase::Error, Some(message)),
        }
    }
}

fn substituted(http: &HttpTemplate, scope: &Scope) -> Result<HttpTemplate, String> {
    let text = |s: &Option<String>| s.as_deref().map(|s| substitute(s, scope)).transpose();
    let mut out = http.clone();
    out.url = substitute(&http.url, scope)?;
    out.method = text(&http.method)?;
    out.body = text(&http.body)?;
    out.success_condition = text(&http.success_condition)?;
    for header in &mut out.headers {
        header.name = substitute(&header.name, scope)?;
        header.value = text(&header.value)?;
    }
    Ok(out)
}

fn error(message: String) -> Report {
    Report {
        phase: Phase::Error,
        message: Some(message),
        outputs: None,
        acted: None,
    }
}

/// Sends the request and judges the response as upstream's agent: `successCondition` if
/// given, else a 2xx status; the body is `outputs.result` either way.
pub async fn perform(client: &kube::Client, request: &Request) -> Report {
    let http = &request.http;
    let method = http.method.as_deref().unwrap_or("GET");
    let Ok(method) = reqwest::Method::from_bytes(method.as_bytes()) else {
        return error(format!("http.method: invalid method {method:?}"));
    };
    let mut headers = reqwest::header::HeaderMap::new();
    for header in &http.headers {
        let value = match header
            .value_from
            .as_ref()
            .and_then(|v| v.secret_key_ref.as_ref())
        {
            Some(selector) => match secret_value(client, &request.namespace, selector).await {
                Ok(value) => value,
                Err(message) => return error(message),
            },
            None => header.value.clone().unwrap_or_default(),
        };
        let name = reqwest::header::HeaderName::from_bytes(header.name.as_bytes());
        let value = reqwest::header::HeaderValue::from_str(&value);
        match (name, value) {
            (Ok(name), Ok(value)) => {
                headers.append(name, value);
            }
            _ => return error(format!("http.headers: invalid header {:?}", header.name)),
        }
    }
    let timeout = http
        .timeout_seconds
        .and_then(|s| u64::try_from(s).ok())
        .map_or(DEFAULT_TIMEOUT, Duration::from_secs);
    let built = reqwest::Client::builder()
        .danger_accept_invalid_certs(http.insecure_skip_verify == Some(true))
        .timeout(timeout)
        .build();
    let http_client = match built {
        Ok(c) => c,
        Err(err) => return error(err.to_string()),
    };
    let body = http.body.clone().unwrap_or_default();
    let sent = http_client
        .request(method.clone(), &http.url)
        .headers(headers)
        .body(body.clone())
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        Err(err) => return error(describe(&err)),
    };
    let status = response.status().as_u16();
    let mut response_headers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in response.headers() {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        response_headers
            .entry(name.as_str().into())
            .or_default()
            .push(value);
    }
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(err) => return error(describe(&err)),
    };
    if bytes.len() > MAX_BODY {
        return error(format!(
            "the response body ({} bytes) is larger than the {MAX_BODY} bytes a node's result may hold",
            bytes.len()
        ));
    }
    let exchange = Exchange {
        method: method.to_string(),
        url: http.url.clone(),
        request_body: body,
        status: i64::from(status),
        body: String::from_utf8_lossy(&bytes).into_owned(),
        headers: response_headers,
    };
    let (phase, message) = match http.success_condition.as_deref().filter(|c| !c.is_empty()) {
        None if (200..300).contains(&status) => (Phase::Succeeded, None),
        None => (
            Phase::Failed,
            Some(format!("received non-2xx response code: {status}")),
        ),
        Some(condition) => match http_condition::evaluate(condition, &exchange) {
            Ok(true) => (Phase::Succeeded, None),
            Ok(false) => (
                Phase::Failed,
                Some(format!("successCondition '{condition}' evaluated false")),
            ),
            Err(err) => (Phase::Error, Some(format!("http.successCondition: {err}"))),
        },
    };
    Report {
        phase,
        message,
        outputs: Some(Outputs {
            result: Some(exchange.body),
            ..Outputs::default()
        }),
        acted: None,
    }
}

/// reqwest's error with its causes (the first line alone says little: "error sending request").
fn describe(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        message.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    message
}

/// The value of a `secretKeyRef`, never logged.
async fn secret_value(
    client: &kube::Client,
    namespace: &str,
    selector: &k8s_openapi::api::core::v1::SecretKeySelector,
) -> Result<String, String> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get_opt(&selector.name)
        .await
        .map_err(|err| format!("reading secret {:?}: {err}", selector.name))?
        .ok_or_else(|| format!("secret {:?} not found", selector.name))?;
    let value = secret
        .data
        .as_ref()
        .and_then(|d| d.get(&selector.key))
        .ok_or_else(|| {
            format!(
                "key {:?} not found in secret {:?}",
                selector.key, selector.name
            )
        })?;
    String::from_utf8(value.0.clone()).map_err(|_| {
        format!(
            "key {:?} of secret {:?} is not UTF-8",
            selector.key, selector.name
        )
    })
}

/// Checks of an http template's fields, named from `http.`.
pub fn validate(template: &Template) -> Result<(), String> {
    let Some(http) = &template.http else {
        return Ok(());
    };
    if http.url.trim().is_empty() {
        return Err("http.url is required".into());
    }
    if let Some(method) = http.method.as_deref().filter(|m| !m.contains("{{"))
        && reqwest::Method::from_bytes(method.as_bytes()).is_err()
    {
        return Err(format!("http.method: invalid method {method:?}"));
    }
    if http.body_from.is_some() {
        return Err("http.bodyFrom: not supported yet (use body)".into());
    }
    for header in &http.headers {
        let from_secret = header
            .value_from
            .as_ref()
            .map(|v| v.secret_key_ref.is_some());
        if from_secret == Some(false) {
            return Err(format!(
                "http.headers.{}.valueFrom: only secretKeyRef is supported",
                header.name
            ));
        }
    }
    if let Some(condition) = http
        .success_condition
        .as_deref()
        .filter(|c| !c.contains("{{") && !c.is_empty())
    {
        http_condition::check(condition).map_err(|err| format!("http.successCondition: {err}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_names_the_field() {
        let cases = [
            ("http: {method: GET}", "http.url is required"),
            (
                "http: {url: 'http://x', method: 'BAD METHOD'}",
                "http.method",
            ),
            (
                "http: {url: 'http://x', bodyFrom: {bytes: aGk=}}",
                "http.bodyFrom",
            ),
            (
                "http: {url: 'http://x', headers: [{name: a, valueFrom: {}}]}",
                "http.headers.a.valueFrom",
            ),
            (
                "http: {url: 'http://x', successCondition: 'response.code == 1'}",
                "http.successCondition",
            ),
        ];
        for (yaml, expected) in cases {
            let template: Template = serde_yaml::from_str(&format!("name: t\n{yaml}")).unwrap();
            let err = validate(&template).unwrap_err();
            assert!(err.contains(expected), "{yaml}: {err}");
        }
        let fine: Template = serde_yaml::from_str(
            "name: t\nhttp: {url: '{{inputs.parameters.url}}', successCondition: 'response.statusCode == 201'}",
        )
        .unwrap();
        assert_eq!(validate(&fine), Ok(()));
    }
}
