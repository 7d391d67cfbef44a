//! A method's REST binding (its `google.api.http` option) and the REST request a request
//! message makes under it — grpc-gateway's rules: `{field.path}` variables in the path, the body
//! the whole message (`*`) or one field of it, every other set field a query parameter.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, PoisonError};

use prost_reflect::{DynamicMessage, ExtensionDescriptor, MethodDescriptor};
use serde_json::{Map, Value};

use crate::descriptors;

/// The REST request of one method.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub method: http::Method,
    /// The path template, e.g. `/api/v1/applications/{name}/sync`.
    pub path: String,
    /// `*` for the whole message, a field's name for that field, `None` for no body.
    pub body: Option<String>,
}

/// A request message as REST: path and query, and the JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct RestRequest {
    pub method: http::Method,
    pub path_and_query: String,
    pub body: Option<Value>,
}

static HTTP_RULE: LazyLock<Option<ExtensionDescriptor>> =
    LazyLock::new(|| descriptors().get_extension_by_name("google.api.http"));

/// The binding of `method`, if its proto gives one.
pub fn binding(method: &MethodDescriptor) -> Option<Binding> {
    bindings(method).into_iter().next()
}

/// The bindings of `method`: its rule, then its `additional_bindings` (`PodLogs` is
/// `/pods/{podName}/logs` for one pod and `/logs` for all of an app's). Read once per method:
/// prost-reflect decodes a method's options anew on each look.
pub fn bindings(method: &MethodDescriptor) -> Vec<Binding> {
    static KNOWN: LazyLock<Mutex<HashMap<String, Vec<Binding>>>> = LazyLock::new(Default::default);
    let mut known = KNOWN.lock().unwrap_or_else(PoisonError::into_inner);
    known
        .entry(method.full_name().to_string())
        .or_insert_with(|| read_bindings(method))
        .clone()
}

fn read_bindings(method: &MethodDescriptor) -> Vec<Binding> {
    let Some(extension) = HTTP_RULE.as_ref() else {
        return Vec::new();
    };
    let options = method.options();
    if !options.has_extension(extension) {
        return Vec::new();
    }
    let rule = options.get_extension(extension);
    let Some(rule) = rule.as_message() else {
        return Vec::new();
    };
    let mut found: Vec<Binding> = rule_binding(rule).into_iter().collect();
    if let Some(additional) = rule
        .get_field_by_name("additional_bindings")
        .and_then(|value| value.as_list().map(<[_]>::to_vec))
    {
        found.extend(
            additional
                .iter()
                .filter_map(|rule| rule.as_message().and_then(rule_binding)),
        );
    }
    found
}

/// The REST request of `message` under the first of `method`'s bindings whose path variables it
/// sets; `None` if the method has no binding.
pub fn request_for(
    method: &MethodDescriptor,
    message: &DynamicMessage,
) -> Option<Result<RestRequest, String>> {
    let mut first_error = None;
    for binding in bindings(method) {
        match binding.request(message) {
            Ok(request) => return Some(Ok(request)),
            Err(err) => {
                first_error.get_or_insert(err);
            }
        }
    }
    first_error.map(Err)
}

/// One `google.api.HttpRule` as a binding.
fn rule_binding(rule: &DynamicMessage) -> Option<Binding> {
    let text = |name: &str| -> Option<String> {
        let value = rule.get_field_by_name(name)?;
        value
            .as_str()
            .filter(|text| !text.is_empty())
            .map(str::to_string)
    };
    let (verb, path) = [
        (http::Method::GET, "get"),
        (http::Method::POST, "post"),
        (http::Method::PUT, "put"),
        (http::Method::DELETE, "delete"),
        (http::Method::PATCH, "patch"),
    ]
    .into_iter()
    .find_map(|(verb, name)| Some((verb, text(name)?)))?;
    Some(Binding {
        method: verb,
        path,
        body: text("body"),
    })
}

impl Binding {
    /// The REST request of `message` (the request JSON from [`crate::json::from_message`]).
    pub fn request(&self, message: &DynamicMessage) -> Result<RestRequest, String> {
        let Value::Object(mut fields) = crate::json::from_message(message) else {
            return Err("the request is not a message".into());
        };
        if prost_reflect::ReflectMessage::descriptor(message).full_name() == "cluster.ClusterQuery"
        {
            cluster_id_from_server_or_name(&mut fields);
        }
        let whole = fields.clone();
        let mut path = String::new();
        let mut rest = self.path.as_str();
        while let Some((before, after)) = rest.split_once('{') {
            let (variable, after) = after
                .split_once('}')
                .ok_or_else(|| format!("unclosed variable in {}", self.path))?;
            path.push_str(before);
            // `{field}` is one segment, `{field=**}` any number of them.
            let (field, pattern) = variable.split_once('=').unwrap_or((variable, "*"));
            let value = take(&mut fields, field)
                .and_then(|value| scalar(&value))
                .filter(|value| !value.is_empty())
                .ok_or_else(|| format!("{field} is required"))?;
            let segments: Vec<&str> = if pattern == "**" {
                value.split('/').collect()
            } else {
                vec![&value]
            };
            for (index, segment) in segments.into_iter().enumerate() {
                if index > 0 {
                    path.push('/');
                }
                path.extend(
                    url::form_urlencoded::byte_serialize(segment.as_bytes()).map(
                        // A path segment: spaces are %20, not the form encoding's `+`.
                        |part| if part == "+" { "%20" } else { part },
                    ),
                );
            }
            rest = after;
        }
        path.push_str(rest);
        let body = match self.body.as_deref() {
            Some("*") => {
                fields.clear();
                Some(Value::Object(whole))
            }
            Some(field) => Some(take(&mut fields, field).unwrap_or(Value::Object(Map::new()))),
            None => lists_beside_messages(&mut fields),
        };
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &fields {
            append_query(&mut query, name, value);
        }
        let query = query.finish();
        let path_and_query = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        Ok(RestRequest {
            method: self.method.clone(),
            path_and_query,
            body,
        })
    }
}

/// Argo CD's server finds the cluster of a `cluster.ClusterQuery` without an `id` by its
/// `server` or `name` (argocd's `cluster get|rm|rotate-auth SERVER/NAME` send those): its REST
/// path names the cluster in `{id.value}`, a name with `id.type=name`.
fn cluster_id_from_server_or_name(fields: &mut Map<String, Value>) {
    let has_id = fields
        .get("id")
        .and_then(|id| id.get("value"))
        .and_then(Value::as_str)
        .is_some_and(|value| !value.is_empty());
    if has_id {
        return;
    }
    let given = |field: &str| {
        fields
            .get(field)
            .and_then(Value::as_str)
            .filter(|value| !value.is_empty())
            .map(str::to_string)
    };
    let id = match (given("server"), given("name")) {
        (Some(server), _) => serde_json::json!({"type": "server", "value": server}),
        (None, Some(name)) => serde_json::json!({"type": "name", "value": name}),
        (None, None) => return,
    };
    fields.insert("id".into(), id);
}

/// The body of a request whose binding has none: a query cannot carry lists of messages
/// (grpc-gateway refuses them), so when the message sets one, its lists — of messages and of
/// anything else, which may be as long (`ServerSideDiff`'s manifests) — travel as a JSON body
/// beside the query's scalars, and the REST route reads both. `None` when it sets no such list.
fn lists_beside_messages(fields: &mut Map<String, Value>) -> Option<Value> {
    let has_messages = |value: &Value| {
        value
            .as_array()
            .is_some_and(|items| items.iter().any(Value::is_object))
    };
    if !fields.values().any(has_messages) {
        return None;
    }
    let lists: Vec<String> = fields
        .iter()
        .filter(|(_, value)| value.is_array())
        .map(|(name, _)| name.clone())
        .collect();
    let body = lists
        .into_iter()
        .filter_map(|name| fields.remove(&name).map(|value| (name, value)))
        .collect();
    Some(Value::Object(body))
}

/// Removes the value at a dotted field path (`application.metadata.name`).
fn take(fields: &mut Map<String, Value>, path: &str) -> Option<Value> {
    match path.split_once('.') {
        None => fields.remove(path),
        Some((first, rest)) => match fields.get_mut(first)? {
            Value::Object(inner) => take(inner, rest),
            _ => None,
        },
    }
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Query parameters as grpc-gateway reads them: nested fields dotted, lists repeated.
fn append_query(query: &mut url::form_urlencoded::Serializer<String>, name: &str, value: &Value) {
    match value {
        Value::Object(fields) => {
            for (field, value) in fields {
                append_query(query, &format!("{name}.{field}"), value);
            }
        }
        Value::Array(items) => {
            for item in items {
                append_query(query, name, item);
            }
        }
        value => {
            if let Some(text) = scalar(value) {
                query.append_pair(name, &text);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::json::to_message;
    use crate::method;

    fn rest(path: &str, request: Value) -> RestRequest {
        let method = method(path).unwrap();
        let message = to_message(&method.input(), request).unwrap();
        request_for(&method, &message).unwrap().unwrap()
    }

    #[test]
    fn path_variables_body_fields_and_query_parameters() {
        let create = rest(
            "/application.ApplicationService/Create",
            json!({"application": {"metadata": {"name": "guestbook"}}, "upsert": true}),
        );
        assert_eq!(create.method, http::Method::POST);
        assert_eq!(create.path_and_query, "/api/v1/applications?upsert=true");
        assert_eq!(
            create.body,
            Some(json!({"metadata": {"name": "guestbook"}}))
        );

        let list = rest(
            "/application.ApplicationService/List",
            json!({"projects": ["a", "b"], "selector": "team=x y"}),
        );
        assert_eq!(list.method, http::Method::GET);
        assert_eq!(
            list.path_and_query,
            "/api/v1/applications?projects=a&projects=b&selector=team%3Dx+y"
        );
        assert_eq!(list.body, None);

        let sync = rest(
            "/application.ApplicationService/Sync",
            json!({"name": "my app", "prune": true}),
        );
        assert_eq!(sync.path_and_query, "/api/v1/applications/my%20app/sync");
        assert_eq!(sync.body, Some(json!({"name": "my app", "prune": true})));

        let update = rest(
            "/cluster.ClusterService/Update",
            json!({"cluster": {"server": "https://x"}, "id": {"type": "url", "value": "https://x"}}),
        );
        assert_eq!(
            update.path_and_query,
            "/api/v1/clusters/https%3A%2F%2Fx?id.type=url"
        );

        let can_i = rest(
            "/account.AccountService/CanI",
            json!({"resource": "applications", "action": "get", "subresource": "team a/*"}),
        );
        assert_eq!(
            can_i.path_and_query,
            "/api/v1/account/can-i/applications/get/team%20a/*"
        );
    }

    #[test]
    fn an_additional_binding_serves_requests_without_the_first_ones_variables() {
        let method = method("/application.ApplicationService/PodLogs").unwrap();
        let paths: Vec<String> = bindings(&method).into_iter().map(|b| b.path).collect();
        assert_eq!(
            paths,
            [
                "/api/v1/applications/{name}/pods/{podName}/logs",
                "/api/v1/applications/{name}/logs"
            ]
        );
        let all_pods = rest(
            "/application.ApplicationService/PodLogs",
            json!({"name": "web", "kind": "Deployment", "follow": true}),
        );
        assert_eq!(
            all_pods.path_and_query,
            "/api/v1/applications/web/logs?follow=true&kind=Deployment"
        );
        let one_pod = rest(
            "/application.ApplicationService/PodLogs",
            json!({"name": "web", "podName": "web-1"}),
        );
        assert_eq!(
            one_pod.path_and_query,
            "/api/v1/applications/web/pods/web-1/logs"
        );
    }

    #[test]
    fn a_cluster_query_names_its_cluster_by_server_or_name_without_an_id() {
        let by_name = rest(
            "/cluster.ClusterService/RotateAuth",
            json!({"name": "prod"}),
        );
        assert_eq!(by_name.method, http::Method::POST);
        assert_eq!(
            by_name.path_and_query,
            "/api/v1/clusters/prod/rotate-auth?id.type=name&name=prod"
        );
        let by_server = rest(
            "/cluster.ClusterService/Get",
            json!({"server": "https://prod:6443"}),
        );
        assert_eq!(
            by_server.path_and_query,
            "/api/v1/clusters/https%3A%2F%2Fprod%3A6443?id.type=server&server=https%3A%2F%2Fprod%3A6443"
        );
        // An id given wins.
        let by_id = rest(
            "/cluster.ClusterService/InvalidateCache",
            json!({"name": "x", "id": {"type": "name", "value": "prod"}}),
        );
        assert_eq!(
            by_id.path_and_query,
            "/api/v1/clusters/prod/invalidate-cache?id.type=name&name=x"
        );
    }

    #[test]
    fn lists_of_messages_of_a_bodiless_binding_travel_as_its_body() {
        let diff = rest(
            "/application.ApplicationService/ServerSideDiff",
            json!({
                "appName": "web",
                "appNamespace": "team-a",
                "liveResources": [{"kind": "ConfigMap", "name": "a", "liveState": "{}"}],
                "targetManifests": ["{\"kind\":\"ConfigMap\"}"],
            }),
        );
        assert_eq!(diff.method, http::Method::GET);
        assert_eq!(
            diff.path_and_query,
            "/api/v1/applications/web/server-side-diff?appNamespace=team-a"
        );
        assert_eq!(
            diff.body,
            Some(json!({
                "liveResources": [{"kind": "ConfigMap", "name": "a", "liveState": "{}"}],
                "targetManifests": ["{\"kind\":\"ConfigMap\"}"],
            }))
        );
        // Lists of scalars alone stay in the query, as grpc-gateway reads them.
        let only_manifests = rest(
            "/application.ApplicationService/ServerSideDiff",
            json!({"appName": "web", "targetManifests": ["a", "b"]}),
        );
        assert_eq!(
            only_manifests.path_and_query,
            "/api/v1/applications/web/server-side-diff?targetManifests=a&targetManifests=b"
        );
        assert_eq!(only_manifests.body, None);
    }

    #[test]
    fn a_missing_path_variable_is_an_error() {
        let method = method("/application.ApplicationService/Get").unwrap();
        let message = to_message(&method.input(), json!({})).unwrap();
        let err = binding(&method).unwrap().request(&message).unwrap_err();
        assert_eq!(err, "name is required");
    }
}
