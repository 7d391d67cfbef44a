//! Resource actions, Argo CD's `argocd app actions`: which actions an object offers (discovery)
//! and what running one changes (the object patched, or new objects created).
//!
//! Built in, with the behaviour of Argo CD's bundled scripts: `restart` for Deployments,
//! StatefulSets and DaemonSets (the pod template's `kubectl.kubernetes.io/restartedAt`), `pause`,
//! `resume` and `scale` for Deployments, `scale` for StatefulSets, and `create-job`, `suspend`
//! and `resume` for CronJobs. argocd-cm's `resource.customizations.actions.<group_kind>` adds Lua
//! ones (`discovery.lua`, `definitions` of `name` + `action.lua`), replacing the built-in ones of
//! that kind unless `mergeBuiltinActions` is set, and run in the health scripts' sandbox.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use ferry_types::resource_overrides::{RESOURCE_CUSTOMIZATIONS, ResourceOverrides};

use crate::lua::{LuaLimits, run_action_script};
use ferry_types::GroupKindRef;

const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

/// An action an object offers, in Argo CD's `ResourceAction` JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
pub struct ResourceAction {
    pub name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub params: Vec<ActionParam>,
    pub disabled: bool,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub icon_class: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub display_name: String,
}

/// A parameter an action takes (`ResourceActionParam`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct ActionParam {
    pub name: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub value: String,
    #[serde(rename = "type", skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub default: String,
}

/// What running an action does to one object.
#[derive(Debug, Clone, PartialEq)]
pub enum Impact {
    /// The acted-on object as it should be (to be applied as a merge patch of the difference).
    Patch(Value),
    /// A new object to create (CronJob's `create-job`).
    Create(Value),
}

/// Why actions cannot be listed or run.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    #[error("argocd-cm key {key:?}: {reason}")]
    Config { key: String, reason: String },
    #[error("action {action:?} is not available for {kind}")]
    Unknown { action: String, kind: String },
    #[error("{0}")]
    Failed(String),
}

/// The Lua actions argocd-cm configures for one group/kind.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CustomActions {
    #[serde(rename = "discovery.lua")]
    discovery: String,
    definitions: Vec<Definition>,
    merge_builtin_actions: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Definition {
    name: String,
    #[serde(rename = "action.lua")]
    action: String,
}

/// The actions in force: built-in ones and argocd-cm's Lua ones, per group/kind.
#[derive(Debug, Clone, Default)]
pub struct ResourceActions {
    custom: BTreeMap<String, CustomActions>,
    limits: LuaLimits,
}

impl ResourceActions {
    /// Only the built-in actions.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads the actions of argocd-cm's `data` ([`ResourceOverrides`]); a key about actions
    /// that cannot be read is an error, other kinds of customization are ignored.
    pub fn from_argocd_cm<K, V>(data: impl IntoIterator<Item = (K, V)>) -> Result<Self, ActionError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let read = ResourceOverrides::from_argocd_cm(data);
        let config = |key: &str, reason: String| ActionError::Config {
            key: key.to_owned(),
            reason,
        };
        if let Some(problem) = read
            .problems
            .iter()
            .find(|p| p.customization.as_deref().is_none_or(|c| c == "actions"))
        {
            return Err(config(&problem.key, problem.reason.clone()));
        }
        let mut actions = Self::new();
        for (group_kind, found) in &read.overrides {
            if found.actions.trim().is_empty() {
                continue;
            }
            let parsed = serde_yaml::from_str(&found.actions).map_err(|err| {
                config(
                    &format!("{RESOURCE_CUSTOMIZATIONS} actions of {group_kind}"),
                    err.to_string(),
                )
            })?;
            actions.custom.insert(group_kind.clone(), parsed);
        }
        Ok(actions)
    }

    /// The actions `obj` offers, by name: argocd-cm's first, then the built-in ones (unless
    /// its configuration replaces them).
    pub fn discover(&self, obj: &Value) -> Result<Vec<ResourceAction>, ActionError> {
        let Some(gk) = GroupKindRef::of(obj) else {
            return Ok(Vec::new());
        };
        let key = gk.to_string();
        let mut found: BTreeMap<String, ResourceAction> = BTreeMap::new();
        let custom = self.custom.get(&key);
        if let Some(custom) = custom.filter(|custom| !custom.discovery.trim().is_empty()) {
            let name = format!("{key}/actions/discovery.lua");
            let table = run_action_script(&name, &custom.discovery, obj, &[], &self.limits)
                .map_err(ActionError::Failed)?;
            for (action, value) in table.as_object().into_iter().flatten() {
                found
                    .entry(action.clone())
                    .or_insert(discovered(action, value)?);
            }
        }
        if custom.is_none_or(|custom| custom.merge_builtin_actions) {
            for action in builtin_discovery(gk, obj) {
                found.entry(action.name.clone()).or_insert(action);
            }
        }
        Ok(found.into_values().collect())
    }

    /// What running `action` with `params` on `obj` does.
    pub fn run(
        &self,
        obj: &Value,
        action: &str,
        params: &[(String, String)],
    ) -> Result<Vec<Impact>, ActionError> {
        let unknown = |kind: &str| ActionError::Unknown {
            action: action.to_owned(),
            kind: kind.to_owned(),
        };
        let Some(gk) = GroupKindRef::of(obj) else {
            return Err(unknown("an object without apiVersion and kind"));
        };
        let key = gk.to_string();
        if let Some(definition) = self
            .custom
            .get(&key)
            .and_then(|custom| custom.definitions.iter().find(|d| d.name == action))
        {
            let name = format!("{key}/actions/{action}/action.lua");
            let returned = run_action_script(&name, &definition.action, obj, params, &self.limits)
                .map_err(ActionError::Failed)?;
            return impacts(obj, returned);
        }
        let mut changed = obj.clone();
        let now = Timestamp::now();
        match (gk.group, gk.kind, action) {
            ("apps", "Deployment" | "StatefulSet" | "DaemonSet", "restart") => {
                let annotations = ensure_object(
                    &mut changed,
                    &["spec", "template", "metadata", "annotations"],
                );
                annotations.insert(
                    RESTARTED_AT.into(),
                    now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string().into(),
                );
            }
            ("apps", "Deployment", "pause") => {
                ensure_object(&mut changed, &["spec"]).insert("paused".into(), true.into());
            }
            ("apps", "Deployment", "resume") => {
                ensure_object(&mut changed, &["spec"]).remove("paused");
            }
            ("apps", "Deployment" | "StatefulSet", "scale") => {
                let replicas = params
                    .iter()
                    .find(|(name, _)| name == "replicas")
                    .map_or("", |(_, value)| value.as_str());
                let number: f64 = replicas
                    .trim()
                    .parse()
                    .map_err(|_| ActionError::Failed(format!("invalid number: {replicas}")))?;
                ensure_object(&mut changed, &["spec"])
                    .insert("replicas".into(), json!(number as i64));
            }
            ("batch", "CronJob", "suspend") => {
                ensure_object(&mut changed, &["spec"]).insert("suspend".into(), true.into());
            }
            ("batch", "CronJob", "resume") => {
                ensure_object(&mut changed, &["spec"]).insert("suspend".into(), false.into());
            }
            ("batch", "CronJob", "create-job") => {
                return Ok(vec![Impact::Create(job_of(obj, now))]);
            }
            _ => return Err(unknown(&key)),
        }
        Ok(vec![Impact::Patch(changed)])
    }
}

/// One entry of a discovery script's table: a table of fields, or a list (an action with no
/// settings, as Lua cannot tell an empty table from an empty list).
fn discovered(name: &str, value: &Value) -> Result<ResourceAction, ActionError> {
    let mut action = match value {
        Value::Object(_) => serde_json::from_value(value.clone()).map_err(|err| {
            ActionError::Failed(format!("action {name:?} of the discovery script: {err}"))
        })?,
        _ => ResourceAction::default(),
    };
    action.name = name.to_owned();
    Ok(action)
}

fn builtin_discovery(gk: GroupKindRef<'_>, obj: &Value) -> Vec<ResourceAction> {
    let action = |name: &str| ResourceAction {
        name: name.into(),
        ..ResourceAction::default()
    };
    let scale = || ResourceAction {
        params: vec![ActionParam {
            name: "replicas".into(),
            ..ActionParam::default()
        }],
        ..action("scale")
    };
    let spec = |field: &str| {
        obj.pointer(&format!("/spec/{field}"))
            .and_then(Value::as_bool)
    };
    match (gk.group, gk.kind) {
        ("apps", "Deployment") => {
            let paused = spec("paused");
            let mut actions = vec![action("restart")];
            // Offered only once the field is set at all, as Argo CD's script does.
            if paused.is_some() {
                actions.push(action("pause"));
            }
            actions.push(ResourceAction {
                disabled: !paused.unwrap_or(false),
                ..action("resume")
            });
            actions.push(scale());
            actions
        }
        ("apps", "StatefulSet") => vec![action("restart"), scale()],
        ("apps", "DaemonSet") => vec![action("restart")],
        ("batch", "CronJob") => {
            let create = ResourceAction {
                icon_class: "fa fa-fw fa-plus".into(),
                display_name: "Create Job".into(),
                ..action("create-job")
            };
            let toggle = if spec("suspend") == Some(true) {
                ResourceAction {
                    icon_class: "fa fa-fw fa-play".into(),
                    ..action("resume")
                }
            } else {
                ResourceAction {
                    icon_class: "fa fa-fw fa-pause".into(),
                    ..action("suspend")
                }
            };
            vec![create, toggle]
        }
        _ => Vec::new(),
    }
}

/// The object at `path` under `value`, made (replacing anything else) where missing.
fn ensure_object<'a>(value: &'a mut Value, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut current = value;
    for key in path {
        if !current.is_object() {
            *current = Value::Object(Map::new());
        }
        current = current
            .as_object_mut()
            .expect("made an object above")
            .entry(key.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    if !current.is_object() {
        *current = Value::Object(Map::new());
    }
    current.as_object_mut().expect("made an object above")
}

/// A Job from a CronJob's template, as `kubectl create job --from=cronjob/<name>` makes it.
fn job_of(cron_job: &Value, now: Timestamp) -> Value {
    let name = cron_job
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut metadata = cron_job
        .pointer("/spec/jobTemplate/metadata")
        .filter(|m| m.as_object().is_some_and(|m| !m.is_empty()))
        .cloned()
        .unwrap_or_else(|| json!({}));
    metadata["name"] = format!("{name}-{}", now.strftime("%y%m%d%H%M")).into();
    metadata["namespace"] = cron_job
        .pointer("/metadata/namespace")
        .cloned()
        .unwrap_or(Value::Null);
    ensure_object(&mut metadata, &["annotations"])
        .insert("cronjob.kubernetes.io/instantiate".into(), "manual".into());
    metadata["ownerReferences"] = json!([{
        "apiVersion": cron_job.get("apiVersion"),
        "kind": cron_job.get("kind"),
        "name": name,
        "uid": cron_job.pointer("/metadata/uid"),
        "blockOwnerDeletion": true,
        "controller": true,
    }]);
    json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata,
        "spec": cron_job.pointer("/spec/jobTemplate/spec").cloned().unwrap_or_else(|| json!({})),
    })
}

/// What a Lua action returned: the changed object, or a list of `{operation, resource}`.
fn impacts(obj: &Value, returned: Value) -> Result<Vec<Impact>, ActionError> {
    match returned {
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let operation = item
                    .get("operation")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let resource = item.get("resource").cloned().unwrap_or(Value::Null);
                match operation {
                    "patch" => Ok(Impact::Patch(settle_empty_tables(resource, obj))),
                    "create" => Ok(Impact::Create(resource)),
                    other => Err(ActionError::Failed(format!(
                        "unsupported operation {other:?}: use patch or create"
                    ))),
                }
            })
            .collect(),
        changed => Ok(vec![Impact::Patch(settle_empty_tables(changed, obj))]),
    }
}

/// Lua has one empty table for `{}` and `[]`: an empty one where the object had a list (or a
/// map) takes that shape back, so an action cannot turn one into the other by accident.
fn settle_empty_tables(new: Value, old: &Value) -> Value {
    match (new, old) {
        (Value::Object(map), Value::Array(_)) if map.is_empty() => Value::Array(Vec::new()),
        (Value::Array(items), Value::Object(_)) if items.is_empty() => Value::Object(Map::new()),
        (Value::Object(map), Value::Object(old)) => Value::Object(
            map.into_iter()
                .map(|(key, value)| {
                    let value = match old.get(&key) {
                        Some(previous) => settle_empty_tables(value, previous),
                        None => value,
                    };
                    (key, value)
                })
                .collect(),
        ),
        (Value::Array(items), Value::Array(old)) => Value::Array(
            items
                .into_iter()
                .enumerate()
                .map(|(index, value)| match old.get(index) {
                    Some(previous) => settle_empty_tables(value, previous),
                    None => value,
                })
                .collect(),
        ),
        (new, _) => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "ns"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": []}}}
        })
    }

    fn names(actions: &[ResourceAction]) -> Vec<(&str, bool)> {
        actions
            .iter()
            .map(|a| (a.name.as_str(), a.disabled))
            .collect()
    }

    #[test]
    fn a_deployment_offers_restart_scale_and_a_disabled_resume() {
        let actions = ResourceActions::new().discover(&deployment()).unwrap();
        assert_eq!(
            names(&actions),
            [("restart", false), ("resume", true), ("scale", false)]
        );
        assert_eq!(actions[2].params[0].name, "replicas");
        let mut paused = deployment();
        paused["spec"]["paused"] = true.into();
        let actions = ResourceActions::new().discover(&paused).unwrap();
        assert_eq!(
            names(&actions),
            [
                ("pause", false),
                ("restart", false),
                ("resume", false),
                ("scale", false)
            ]
        );
    }

    #[test]
    fn restart_annotates_the_pod_template_and_scale_checks_its_number() {
        let actions = ResourceActions::new();
        let [Impact::Patch(restarted)] = &actions.run(&deployment(), "restart", &[]).unwrap()[..]
        else {
            panic!("one patch");
        };
        let at = restarted["spec"]["template"]["metadata"]["annotations"][RESTARTED_AT]
            .as_str()
            .unwrap();
        assert!(at.parse::<Timestamp>().is_ok(), "{at}");
        assert_eq!(
            restarted["spec"]["template"]["spec"]["containers"],
            json!([])
        );

        let params = [("replicas".to_string(), "3".to_string())];
        let [Impact::Patch(scaled)] = &actions.run(&deployment(), "scale", &params).unwrap()[..]
        else {
            panic!("one patch");
        };
        assert_eq!(scaled["spec"]["replicas"], 3);
        let bad = [("replicas".to_string(), "many".to_string())];
        let err = actions.run(&deployment(), "scale", &bad).unwrap_err();
        assert_eq!(err.to_string(), "invalid number: many");
        let err = actions.run(&deployment(), "explode", &[]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "action \"explode\" is not available for apps/Deployment"
        );
    }

    #[test]
    fn a_cron_job_creates_a_job_from_its_template() {
        let cron = json!({
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "nightly", "namespace": "ns", "uid": "u1"},
            "spec": {"jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never"}}}}}
        });
        let actions = ResourceActions::new();
        assert_eq!(
            names(&actions.discover(&cron).unwrap()),
            [("create-job", false), ("suspend", false)]
        );
        let [Impact::Create(job)] = &actions.run(&cron, "create-job", &[]).unwrap()[..] else {
            panic!("one create");
        };
        assert_eq!(job["kind"], "Job");
        assert!(
            job["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("nightly-")
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(
            job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
            "manual"
        );
        assert_eq!(job["spec"]["template"]["spec"]["restartPolicy"], "Never");
    }

    #[test]
    fn argocd_cm_lua_actions_replace_or_join_the_built_in_ones() {
        let config = r#"
discovery.lua: |
  local actions = {}
  actions["label"] = {["displayName"] = "Label it"}
  actions["off"] = {["disabled"] = true}
  return actions
definitions:
- name: label
  action.lua: |
    local os = require("os")
    obj.metadata.labels = {team = actionParams["team"] or "none"}
    return obj
"#;
        let replaced = ResourceActions::from_argocd_cm([(
            "resource.customizations.actions.apps_Deployment",
            config,
        )])
        .unwrap();
        let listed = replaced.discover(&deployment()).unwrap();
        assert_eq!(names(&listed), [("label", false), ("off", true)]);
        assert_eq!(listed[0].display_name, "Label it");
        let params = [("team".to_string(), "blue".to_string())];
        let [Impact::Patch(labelled)] = &replaced.run(&deployment(), "label", &params).unwrap()[..]
        else {
            panic!("one patch");
        };
        assert_eq!(labelled["metadata"]["labels"]["team"], "blue");
        // The empty list stays a list, though Lua returned an empty table.
        assert_eq!(
            labelled["spec"]["template"]["spec"]["containers"],
            json!([])
        );

        let merged = ResourceActions::from_argocd_cm([(
            "resource.customizations.actions.apps_Deployment",
            format!("{config}mergeBuiltinActions: true\n"),
        )])
        .unwrap();
        assert_eq!(merged.discover(&deployment()).unwrap().len(), 5);
        assert!(merged.run(&deployment(), "restart", &[]).is_ok());
    }

    #[test]
    fn failing_scripts_and_bad_configuration_are_reported() {
        let failing = ResourceActions::from_argocd_cm([(
            "resource.customizations.actions.apps_Deployment",
            "definitions:\n- name: boom\n  action.lua: error('no way', 0)\n",
        )])
        .unwrap();
        let err = failing.run(&deployment(), "boom", &[]).unwrap_err();
        assert_eq!(err.to_string(), "no way");
        let err =
            ResourceActions::from_argocd_cm([("resource.customizations.actions.a_b_c", "{}")])
                .unwrap_err();
        assert!(err.to_string().contains("a_b_c"), "{err}");
    }
}
