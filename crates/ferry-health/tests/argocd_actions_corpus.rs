//! Conformance with Argo CD's bundled resource actions: for every `<group>/<kind>/actions/` of
//! its `resource_customizations` (at the release pinned in tools/versions.env, read from the Go
//! module cache), `discovery.lua` and each `<action>/action.lua` are configured as argocd-cm's
//! `resource.customizations.actions.<group>_<Kind>` and run by ferry's action runner on the
//! inputs of `action_test.yaml`; the actions discovered, the objects returned and the errors
//! must be those Argo CD's own test expects, compared as Argo CD's test compares them. ferry's
//! built-in actions (written in Rust) are held to the same data for the kinds they cover.

mod argocd;

use std::collections::BTreeMap;
use std::path::Path;

use argocd::{corpus, dirs_with, first_document, read, tests};
use ferry_health::{ActionError, Impact, ResourceAction, ResourceActions};
use serde::Deserialize;
use serde_json::{Map, Value, json};

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ActionTests {
    discovery_tests: Vec<DiscoveryTest>,
    action_tests: Vec<ActionTest>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DiscoveryTest {
    input_path: String,
    result: Vec<ResourceAction>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ActionTest {
    action: String,
    input_path: String,
    expected_output_path: String,
    expected_error_message: String,
    parameters: BTreeMap<String, String>,
}

/// How many cases ran, and what disagreed.
#[derive(Default)]
struct Tally {
    cases: usize,
    disagreements: Vec<String>,
}

impl Tally {
    fn check(&mut self, case: String, outcome: Result<(), String>) {
        self.cases += 1;
        if let Err(why) = outcome {
            self.disagreements.push(format!("{case}: {why}"));
        }
    }

    fn report(&self, what: &str) {
        println!(
            "{what}: {} cases, {} agree, {} disagree",
            self.cases,
            self.cases - self.disagreements.len(),
            self.disagreements.len()
        );
        assert!(
            self.disagreements.is_empty(),
            "{what}: {} of {} cases disagree with Argo CD:\n{}",
            self.disagreements.len(),
            self.cases,
            self.disagreements.join("\n")
        );
    }
}

/// argocd-cm's key and value for the Lua actions of one `<group>/<kind>/actions` directory.
fn argocd_cm_entry(group_kind: &str, actions_dir: &Path) -> (String, String) {
    let definitions: Vec<Value> = std::fs::read_dir(actions_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("action.lua").is_file())
        .map(|p| {
            json!({
                "name": p.file_name().unwrap().to_str().unwrap(),
                "action.lua": read(&p.join("action.lua")),
            })
        })
        .collect();
    let config = json!({
        "discovery.lua": read(&actions_dir.join("discovery.lua")),
        "definitions": definitions,
    });
    let key = match group_kind.split_once('/') {
        Some((group, kind)) => format!("resource.customizations.actions.{group}_{kind}"),
        None => format!("resource.customizations.actions.{group_kind}"),
    };
    (key, serde_yaml::to_string(&config).unwrap())
}

#[test]
fn argo_cd_action_scripts_run_by_ferry_give_what_argo_cd_expects() {
    let corpus = corpus();
    let dirs = dirs_with(&corpus, "action_test.yaml");
    let mut tally = Tally::default();
    for actions_dir in &dirs {
        let group_kind = actions_dir.parent().unwrap().strip_prefix(&corpus).unwrap();
        let group_kind = group_kind.display().to_string();
        let actions = ResourceActions::from_argocd_cm([argocd_cm_entry(&group_kind, actions_dir)])
            .unwrap_or_else(|err| panic!("{group_kind}: {err}"));
        let cases: ActionTests = tests(&actions_dir.join("action_test.yaml"));
        for test in &cases.discovery_tests {
            let case = format!("{group_kind} discovery {}", test.input_path);
            tally.check(case, discovery(&actions, actions_dir, test));
        }
        for test in &cases.action_tests {
            let case = format!("{group_kind} {} {}", test.action, test.input_path);
            tally.check(case, action(&actions, actions_dir, test));
        }
    }
    assert!(
        dirs.len() > 20,
        "only {} action directories found",
        dirs.len()
    );
    tally.report(&format!(
        "Argo CD's action scripts of {} kinds run by ferry",
        dirs.len()
    ));
}

#[test]
fn ferry_builtin_actions_give_what_argo_cd_expects() {
    let corpus = corpus();
    let builtin = ResourceActions::new();
    let mut tally = Tally::default();
    for group_kind in [
        "apps/Deployment",
        "apps/StatefulSet",
        "apps/DaemonSet",
        "batch/CronJob",
    ] {
        let actions_dir = corpus.join(group_kind).join("actions");
        let cases: ActionTests = tests(&actions_dir.join("action_test.yaml"));
        for test in &cases.discovery_tests {
            let case = format!("{group_kind} discovery {}", test.input_path);
            tally.check(case, discovery(&builtin, &actions_dir, test));
        }
        for test in &cases.action_tests {
            let case = format!("{group_kind} {} {}", test.action, test.input_path);
            tally.check(case, action(&builtin, &actions_dir, test));
        }
    }
    tally.report("ferry's built-in actions");
}

/// The actions discovered must be the ones expected (Argo CD's test only asks that each one
/// discovered is among them; here none may be missing either).
fn discovery(actions: &ResourceActions, dir: &Path, test: &DiscoveryTest) -> Result<(), String> {
    let obj = first_document(&dir.join(&test.input_path));
    let found = actions.discover(&obj).map_err(|err| err.to_string())?;
    let unexpected: Vec<_> = found.iter().filter(|a| !test.result.contains(a)).collect();
    let missing: Vec<_> = test.result.iter().filter(|a| !found.contains(a)).collect();
    if unexpected.is_empty() && missing.is_empty() {
        Ok(())
    } else {
        Err(format!("unexpected {unexpected:?}, missing {missing:?}"))
    }
}

fn action(actions: &ResourceActions, dir: &Path, test: &ActionTest) -> Result<(), String> {
    let source = first_document(&dir.join(&test.input_path));
    let params: Vec<(String, String)> = test.parameters.clone().into_iter().collect();
    let outcome = actions.run(&source, &test.action, &params);
    if !test.expected_error_message.is_empty() {
        return match outcome {
            Err(err) if err.to_string() == test.expected_error_message => Ok(()),
            Err(err) => Err(format!(
                "error {err:?}, expected {:?}",
                test.expected_error_message
            )),
            Ok(_) => Err(format!(
                "ran, expected the error {:?}",
                test.expected_error_message
            )),
        };
    }
    let impacts = outcome.map_err(|err: ActionError| format!("failed: {err}"))?;
    let expected = expected_objects(&dir.join(&test.expected_output_path));
    if impacts.len() != expected.len() {
        return Err(format!(
            "{} objects returned, {} expected",
            impacts.len(),
            expected.len()
        ));
    }
    for impact in impacts {
        let (mut got, created) = match impact {
            Impact::Patch(obj) => (obj, false),
            Impact::Create(obj) => (obj, true),
        };
        // Names derived from the source's (and the clock) are matched by prefix.
        let derived_name = matches!(
            (kind(&got), kind(&source)),
            ("Job", "CronJob") | ("Workflow", "CronWorkflow" | "WorkflowTemplate")
        );
        let want = expected
            .iter()
            .find(|want| {
                api_version(want) == api_version(&got)
                    && kind(want) == kind(&got)
                    && namespace(want) == namespace(&got)
                    && if derived_name {
                        name(want).starts_with(name(&source))
                    } else {
                        name(want) == name(&got)
                    }
            })
            .ok_or_else(|| format!("returned {} {:?}, not expected", kind(&got), name(&got)))?;
        if !created
            && (api_version(&got), kind(&got), name(&got), namespace(&got))
                != (
                    api_version(&source),
                    kind(&source),
                    name(&source),
                    namespace(&source),
                )
        {
            return Err(format!(
                "patches another object: {} {:?}",
                kind(&got),
                name(&got)
            ));
        }
        if created && derived_name {
            got["metadata"]["name"] = name(want).into();
        }
        let want = normalized(want.clone());
        let got = only_fields_of(&want, normalized(got));
        if want != got {
            return Err(format!(
                "differs:\n    expected {}\n    got      {}",
                serde_json::to_string(&want).unwrap(),
                serde_json::to_string(&got).unwrap()
            ));
        }
    }
    Ok(())
}

/// An expected output: one object, or a list of `{k8sOperation, unstructuredObj}`.
fn expected_objects(path: &Path) -> Vec<Value> {
    if read(path).starts_with('-') {
        let items: Vec<Value> = tests(path);
        items
            .into_iter()
            .map(|item| item["unstructuredObj"].clone())
            .collect()
    } else {
        vec![first_document(path)]
    }
}

fn text<'a>(obj: &'a Value, pointer: &str) -> &'a str {
    obj.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}
fn api_version(obj: &Value) -> &str {
    text(obj, "/apiVersion")
}
fn kind(obj: &Value) -> &str {
    text(obj, "/kind")
}
fn name(obj: &Value) -> &str {
    text(obj, "/metadata/name")
}
fn namespace(obj: &Value) -> &str {
    text(obj, "/metadata/namespace")
}

/// What Argo CD's test normalizes before comparing: times an action stamps, and fields the
/// cluster would fill in; then numbers as floats (Lua has no integers) and no null fields (Go's
/// round trip through the typed objects drops them).
fn normalized(mut obj: Value) -> Value {
    const FLUX_KINDS: [&str; 10] = [
        "HelmRelease",
        "ImageRepository",
        "ImageUpdateAutomation",
        "Kustomization",
        "Receiver",
        "Bucket",
        "GitRepository",
        "HelmChart",
        "HelmRepository",
        "OCIRepository",
    ];
    let kind = kind(&obj).to_owned();
    match kind.as_str() {
        "Job" => {
            let conditions = obj
                .pointer_mut("/status/conditions")
                .and_then(Value::as_array_mut);
            for condition in conditions.into_iter().flatten() {
                if condition["type"] == "FailureTarget" {
                    condition["lastTransitionTime"] = "0001-01-01T00:00:00Z".into();
                }
            }
        }
        "DaemonSet" | "Deployment" | "StatefulSet" => set(
            &mut obj,
            &["spec", "template", "metadata", "annotations"],
            json!({"kubectl.kubernetes.io/restartedAt": "0001-01-01T00:00:00Z"}),
        ),
        _ => {}
    }
    match kind.as_str() {
        "Deployment" => {
            set(&mut obj, &["status"], Value::Null);
            set(&mut obj, &["metadata", "creationTimestamp"], Value::Null);
            set(&mut obj, &["metadata", "generation"], Value::Null);
        }
        "Rollout" => set(&mut obj, &["spec", "restartAt"], Value::Null),
        "ExternalSecret" | "PushSecret" => set(
            &mut obj,
            &["metadata", "annotations"],
            json!({"force-sync": "0001-01-01T00:00:00Z"}),
        ),
        "Workflow" => {
            set(&mut obj, &["metadata", "resourceVersion"], Value::Null);
            set(&mut obj, &["metadata", "uid"], Value::Null);
            set(
                &mut obj,
                &[
                    "metadata",
                    "annotations",
                    "workflows.argoproj.io/scheduled-time",
                ],
                Value::Null,
            );
        }
        kind if FLUX_KINDS.contains(&kind) => set(
            &mut obj,
            &["metadata", "annotations"],
            json!({"reconcile.fluxcd.io/requestedAt": "By Argo CD at: 0001-01-01T00:00:00"}),
        ),
        _ => {}
    }
    canonical(obj)
}

/// Sets the field at `path`, making the maps on the way.
fn set(obj: &mut Value, path: &[&str], value: Value) {
    let (last, parents) = path.split_last().unwrap();
    let mut current = obj;
    for key in parents {
        if !current[*key].is_object() {
            current[*key] = json!({});
        }
        current = &mut current[*key];
    }
    current[*last] = value;
}

fn canonical(value: Value) -> Value {
    match value {
        Value::Number(n) => json!(n.as_f64().unwrap()),
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, canonical(v)))
                .collect(),
        ),
        other => other,
    }
}

/// `got` without the map fields `want` does not have, as Argo CD's two-way diff compares (a
/// list's extra items stay, so they show).
fn only_fields_of(want: &Value, got: Value) -> Value {
    match (want, got) {
        (Value::Object(want), Value::Object(got)) => Value::Object(
            got.into_iter()
                .filter_map(|(k, v)| want.get(&k).map(|w| (k, only_fields_of(w, v))))
                .collect::<Map<_, _>>(),
        ),
        (Value::Array(want), Value::Array(got)) => Value::Array(
            got.into_iter()
                .enumerate()
                .map(|(i, v)| match want.get(i) {
                    Some(w) => only_fields_of(w, v),
                    None => v,
                })
                .collect(),
        ),
        (_, got) => got,
    }
}
