//! A workflow node's pod: built from a container or script template with the executor wrapped
//! around the main command, and read back as a [`PodView`].

use ferry_exec::{BINARY, DIR, Report, Run, SCRIPT, SCRIPT_ENV};
use ferry_types::workflow::{Template, Workflow, labels};
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Map, Value, json};

use crate::expr::{Scope, substitute_json};

/// The emptyDir the init container puts the executor in.
const VOLUME: &str = "var-run-ferry";
/// The main container's name (upstream's).
pub const MAIN: &str = "main";

/// How the controller builds pods.
#[derive(Debug, Clone)]
pub struct PodSettings {
    /// The image holding `/ferry-exec` (a static binary), run as the init container.
    pub executor_image: String,
    pub executor_pull_policy: Option<String>,
}

/// Everything about one node's pod that the operator needs.
pub struct PodRequest<'a> {
    pub workflow: &'a Workflow,
    pub node_name: &'a str,
    pub node_id: &'a str,
    pub pod_name: &'a str,
    pub template: &'a Template,
    /// Resolves the template's tags: its inputs, `workflow.*`, `pod.name`...
    pub scope: &'a Scope,
}

/// The pod of a container or script node.
pub fn build(request: &PodRequest, settings: &PodSettings) -> Result<Pod, String> {
    let template = request.template;
    let (mut main, script) = match (&template.container, &template.script) {
        (Some(container), _) => (container.clone(), false),
        (None, Some(script)) => (script.clone(), true),
        (None, None) => return Err(format!("template {:?} has no container", template.name)),
    };
    main = match substitute_json(&Value::Object(main), request.scope)? {
        Value::Object(map) => map,
        _ => unreachable!("substitution keeps an object an object"),
    };
    let field = if script { "script" } else { "container" };
    let mut run = Run {
        result: script,
        script: script.then(|| SCRIPT.into()),
        ..Run::default()
    };
    for parameter in template.outputs.iter().flat_map(|o| &o.parameters) {
        if let Some(path) = parameter.value_from.as_ref().and_then(|v| v.path.as_ref()) {
            let path = crate::expr::substitute(path, request.scope)?;
            run.outputs.push((parameter.name.clone(), path));
        }
    }
    if script {
        let source = match main.remove("source") {
            Some(Value::String(source)) => source,
            _ => return Err("script.source is required".into()),
        };
        push(
            &mut main,
            "env",
            json!({"name": SCRIPT_ENV, "value": source}),
        );
    }
    main.insert("name".into(), MAIN.into());
    let user_mounts = main.get("volumeMounts").cloned();
    let sidecars = sidecars(template, request.scope, user_mounts.as_ref())?;
    let volumes = volumes(request, [&main].into_iter().chain(&sidecars))?;
    push(
        &mut main,
        "volumeMounts",
        json!({"name": VOLUME, "mountPath": DIR}),
    );

    let mut init = json!({
        "name": "init",
        "image": settings.executor_image,
        "command": ["/ferry-exec", "init", BINARY],
        "volumeMounts": [{"name": VOLUME, "mountPath": DIR}],
    });
    if let Some(policy) = &settings.executor_pull_policy {
        init["imagePullPolicy"] = policy.as_str().into();
    }

    let workflow = request.workflow;
    let spec = &workflow.spec;
    let mut node_selector = spec.node_selector.clone().unwrap_or_default();
    node_selector.extend(template.node_selector.clone().unwrap_or_default());
    let tolerations: Vec<&Value> = spec
        .tolerations
        .iter()
        .chain(&template.tolerations)
        .flatten()
        .collect();
    let mut init_containers = vec![init];
    init_containers.extend(sidecars.into_iter().map(Value::Object));
    let mut pod_volumes = vec![json!({"name": VOLUME, "emptyDir": {}})];
    pod_volumes.extend(volumes);
    let mut pod_spec = json!({
        "restartPolicy": "Never",
        "initContainers": init_containers,
        "containers": [main],
        "volumes": pod_volumes,
    });
    if !node_selector.is_empty() {
        pod_spec["nodeSelector"] = json!(node_selector);
    }
    if !tolerations.is_empty() {
        pod_spec["tolerations"] = json!(tolerations);
    }
    if let Some(secrets) = &spec.image_pull_secrets {
        pod_spec["imagePullSecrets"] = json!(secrets);
    }
    if let Some(account) = &spec.service_account_name {
        pod_spec["serviceAccountName"] = account.as_str().into();
    }
    if let Some(deadline) = &template.active_deadline_seconds {
        pod_spec["activeDeadlineSeconds"] = match deadline {
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(n) => json!(n),
            k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::String(s) => {
                json!(
                    s.parse::<i64>()
                        .map_err(|_| format!("activeDeadlineSeconds {s:?} is not a number"))?
                )
            }
        };
    }
    // The workflow's patch, then the template's, before the executor wraps the main command
    // (as upstream: a patched command is still wrapped).
    for patch in [&spec.pod_spec_patch, &template.pod_spec_patch]
        .into_iter()
        .flatten()
    {
        let patch = crate::expr::substitute(patch, request.scope)
            .map_err(|err| format!("Failed to substitute the PodSpecPatch variables: {err}"))?;
        crate::pod_spec_patch::apply(&mut pod_spec, &patch)?;
    }
    wrap_main(&mut pod_spec, &mut run, field)?;
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let pod = json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": request.pod_name,
            "namespace": workflow.metadata.namespace,
            "labels": {labels::WORKFLOW: name},
            "annotations": {
                labels::NODE_NAME: request.node_name,
                labels::NODE_ID: request.node_id,
            },
            "ownerReferences": [{
                "apiVersion": ferry_types::API_VERSION,
                "kind": "Workflow",
                "name": name,
                "uid": workflow.metadata.uid,
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": pod_spec,
    });
    serde_json::from_value(pod).map_err(|err| format!("{field}: {err}"))
}

/// The template's sidecars as Kubernetes native sidecars: init containers with `restartPolicy:
/// Always`, started before the main container and stopped by the kubelet once it exited, so
/// the pod completes as upstream's (whose executor kills them). `mirrorVolumeMounts` gives one
/// the main container's own mounts.
fn sidecars(
    template: &Template,
    scope: &Scope,
    main_mounts: Option<&Value>,
) -> Result<Vec<Map<String, Value>>, String> {
    let mut out = Vec::new();
    for (index, sidecar) in template.sidecars.iter().flatten().enumerate() {
        let field = format!("sidecars[{index}]");
        let Value::Object(mut sidecar) = substitute_json(&Value::Object(sidecar.clone()), scope)?
        else {
            unreachable!("substitution keeps an object an object")
        };
        match sidecar.get("name") {
            Some(Value::String(name)) if !name.is_empty() && name != MAIN && name != "init" => {}
            Some(Value::String(name)) if !name.is_empty() => {
                return Err(format!("{field}.name: {name:?} is the executor's"));
            }
            _ => return Err(format!("{field}.name is required")),
        }
        if let Some(Value::Bool(true)) = sidecar.remove("mirrorVolumeMounts") {
            for mount in main_mounts.and_then(Value::as_array).into_iter().flatten() {
                push(&mut sidecar, "volumeMounts", mount.clone());
            }
        }
        sidecar.insert("restartPolicy".into(), "Always".into());
        out.push(sidecar);
    }
    Ok(out)
}

/// The pod's volumes besides the executor's: the template's own, and those of the workflow's
/// `volumes` and `volumeClaimTemplates` that `containers` mount (upstream's lookup order).
fn volumes<'c>(
    request: &PodRequest,
    containers: impl Iterator<Item = &'c Map<String, Value>>,
) -> Result<Vec<Value>, String> {
    let workflow = request.workflow;
    let own = request.template.volumes.iter().flatten();
    let workflow_volumes = workflow.spec.volumes.iter().flatten();
    let claims = workflow
        .status
        .iter()
        .flat_map(|s| &s.persistent_volume_claims);
    let known: Vec<&Value> = own.clone().chain(workflow_volumes).chain(claims).collect();
    let mut out: Vec<Value> = own.cloned().collect();
    let mounts = containers.flat_map(|c| c.get("volumeMounts").and_then(Value::as_array));
    for mount in mounts.flatten() {
        let name = mount
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if out
            .iter()
            .any(|v| v.get("name").and_then(Value::as_str) == Some(name))
        {
            continue;
        }
        let volume = known
            .iter()
            .find(|v| v.get("name").and_then(Value::as_str) == Some(name))
            .ok_or_else(|| format!("volume '{name}' not found in workflow spec"))?;
        out.push((*volume).clone());
    }
    out.into_iter()
        .map(|v| substitute_json(&v, request.scope))
        .collect()
}

/// The main container's `command` and `args` become the executor's command line running them.
fn wrap_main(pod_spec: &mut Value, run: &mut Run, field: &str) -> Result<(), String> {
    let main = pod_spec["containers"]
        .as_array_mut()
        .and_then(|containers| {
            containers
                .iter_mut()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(MAIN))
        })
        .and_then(Value::as_object_mut)
        .ok_or_else(|| format!("the pod has no {MAIN:?} container"))?;
    let mut command = strings(main.remove("command"), &format!("{field}.command"))?;
    if command.is_empty() {
        // Upstream looks the image's entrypoint up in its registry; ferry does not yet.
        return Err(format!(
            "{field}.command is required: ferry's executor does not read image entrypoints yet"
        ));
    }
    command.extend(strings(main.remove("args"), &format!("{field}.args"))?);
    run.command = command.into_iter().map(Into::into).collect();
    main.insert("command".into(), json!(run.command_line()));
    Ok(())
}

fn strings(value: Option<Value>, field: &str) -> Result<Vec<String>, String> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|item| match item {
                Value::String(s) => Ok(s),
                other => Err(format!("{field}: {other} is not a string")),
            })
            .collect(),
        Some(other) => Err(format!("{field}: {other} is not a list")),
    }
}

fn push(container: &mut Map<String, Value>, field: &str, item: Value) {
    match container.entry(field).or_insert_with(|| json!([])) {
        Value::Array(items) => items.push(item),
        other => *other = json!([item]),
    }
}

/// What a pod says about its node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodView {
    /// The pod's phase: Pending, Running, Succeeded, Failed.
    pub phase: String,
    /// The main container's exit code, once it terminated.
    pub exit_code: Option<i32>,
    /// The executor's report, from the main container's termination message.
    pub report: Option<Report>,
    /// The termination message when it is not a report (the executor never ran).
    pub raw_message: Option<String>,
    /// Why the pod failed, when Kubernetes says (e.g. DeadlineExceeded, Evicted).
    pub pod_message: Option<String>,
    pub host: Option<String>,
}

impl PodView {
    pub fn of(pod: &Pod) -> Self {
        let status = pod.status.clone().unwrap_or_default();
        let terminated = status
            .container_statuses
            .iter()
            .flatten()
            .find(|c| c.name == MAIN)
            .and_then(|c| c.state.as_ref()?.terminated.clone());
        // An init container that failed (fetching input artifacts) says why in its message.
        let init_failure = status
            .init_container_statuses
            .iter()
            .flatten()
            .filter_map(|c| c.state.as_ref()?.terminated.clone())
            .find(|t| t.exit_code != 0)
            .and_then(|t| t.message);
        let message = terminated
            .as_ref()
            .and_then(|t| t.message.clone())
            .or(init_failure);
        let report = message
            .as_deref()
            .and_then(|m| serde_json::from_str::<Report>(m).ok());
        PodView {
            phase: status.phase.unwrap_or_else(|| "Pending".into()),
            exit_code: terminated.as_ref().map(|t| t.exit_code),
            raw_message: message.filter(|_| report.is_none()),
            report,
            pod_message: status.message.or(status.reason),
            host: pod.spec.as_ref().and_then(|s| s.node_name.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workflow(yaml: &str) -> Workflow {
        serde_yaml::from_str(yaml).unwrap()
    }

    const SETTINGS: fn() -> PodSettings = || PodSettings {
        executor_image: "ferry.local/ferry-exec:test".into(),
        executor_pull_policy: Some("IfNotPresent".into()),
    };

    #[test]
    fn a_script_runs_under_the_executor_with_its_source_and_outputs() {
        let wf = workflow(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf, namespace: ns, uid: u1}
spec:
  serviceAccountName: runner
  nodeSelector: {disk: ssd}
  templates:
  - name: gen
    inputs: {parameters: [{name: n}]}
    outputs: {parameters: [{name: out, valueFrom: {path: '/tmp/{{inputs.parameters.n}}'}}]}
    script:
      image: busybox
      command: [sh]
      args: [-e]
      env: [{name: A, value: b}]
      source: echo {{inputs.parameters.n}}
",
        );
        let scope: Scope = [("inputs.parameters.n".to_string(), "7".to_string())].into();
        let request = PodRequest {
            workflow: &wf,
            node_name: "wf[0].gen",
            node_id: "wf-1",
            pod_name: "wf-gen-1",
            template: &wf.spec.templates[0],
            scope: &scope,
        };
        let pod = serde_json::to_value(build(&request, &SETTINGS()).unwrap()).unwrap();
        let main = &pod["spec"]["containers"][0];
        assert_eq!(main["name"], "main");
        assert_eq!(
            main["command"],
            json!([
                BINARY,
                "run",
                "--result",
                "--script",
                SCRIPT,
                "--output",
                "out=/tmp/7",
                "--",
                "sh",
                "-e"
            ])
        );
        assert_eq!(
            main["env"][1],
            json!({"name": SCRIPT_ENV, "value": "echo 7"})
        );
        assert_eq!(
            pod["spec"]["initContainers"][0]["image"],
            "ferry.local/ferry-exec:test"
        );
        assert_eq!(pod["spec"]["serviceAccountName"], "runner");
        assert_eq!(pod["spec"]["nodeSelector"]["disk"], "ssd");
        assert_eq!(pod["spec"]["restartPolicy"], "Never");
        assert_eq!(pod["metadata"]["labels"][labels::WORKFLOW], "wf");
        assert_eq!(pod["metadata"]["ownerReferences"][0]["uid"], "u1");
        assert_eq!(
            pod["metadata"]["annotations"][labels::NODE_NAME],
            "wf[0].gen"
        );
    }

    #[test]
    fn sidecars_are_native_sidecars_and_mounted_volumes_come_from_the_workflow() {
        let wf = workflow(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf, namespace: ns, uid: u1}
spec:
  volumes:
  - {name: data, configMap: {name: '{{workflow.name}}-data'}}
  - {name: unused, emptyDir: {}}
  templates:
  - name: c
    volumes: [{name: own, emptyDir: {}}]
    container:
      image: busybox
      command: [sh, -c, 'wget -O- localhost']
      volumeMounts: [{name: data, mountPath: /data}, {name: work, mountPath: /work}]
    sidecars:
    - {name: web, image: nginx, mirrorVolumeMounts: true}
    - {name: cache, image: redis, volumeMounts: [{name: own, mountPath: /own}]}
status:
  persistentVolumeClaims:
  - {name: work, persistentVolumeClaim: {claimName: wf-work}}
",
        );
        let scope: Scope = [("workflow.name".to_string(), "wf".to_string())].into();
        let request = PodRequest {
            workflow: &wf,
            node_name: "wf",
            node_id: "wf",
            pod_name: "wf",
            template: &wf.spec.templates[0],
            scope: &scope,
        };
        let pod = serde_json::to_value(build(&request, &SETTINGS()).unwrap()).unwrap();
        let spec = &pod["spec"];
        let init = spec["initContainers"].as_array().unwrap();
        assert_eq!(init.len(), 3);
        assert_eq!(init[1]["name"], "web");
        assert_eq!(init[1]["restartPolicy"], "Always");
        // The main container's own mounts, not the executor's.
        assert_eq!(
            init[1]["volumeMounts"],
            json!([{"name": "data", "mountPath": "/data"}, {"name": "work", "mountPath": "/work"}])
        );
        assert_eq!(init[2]["restartPolicy"], "Always");
        assert_eq!(init[2]["volumeMounts"][0]["name"], "own");
        let names: Vec<&str> = spec["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, [VOLUME, "own", "data", "work"]);
        assert_eq!(spec["volumes"][2]["configMap"]["name"], "wf-data");
        assert_eq!(
            spec["volumes"][3]["persistentVolumeClaim"]["claimName"],
            "wf-work"
        );
        assert_eq!(spec["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_mount_of_an_unknown_volume_or_a_nameless_sidecar_is_refused() {
        let wf = workflow(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  templates:
  - name: c
    container: {image: busybox, command: ['true'], volumeMounts: [{name: nowhere, mountPath: /x}]}
  - name: s
    container: {image: busybox, command: ['true']}
    sidecars: [{image: nginx}]
",
        );
        let scope = Scope::new();
        let request = |template| PodRequest {
            workflow: &wf,
            node_name: "wf",
            node_id: "wf",
            pod_name: "wf",
            template,
            scope: &scope,
        };
        let err = build(&request(&wf.spec.templates[0]), &SETTINGS()).unwrap_err();
        assert_eq!(err, "volume 'nowhere' not found in workflow spec");
        let err = build(&request(&wf.spec.templates[1]), &SETTINGS()).unwrap_err();
        assert_eq!(err, "sidecars[0].name is required");
    }

    #[test]
    fn a_container_without_command_is_refused_with_the_reason() {
        let wf = workflow(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  templates:
  - name: c
    container: {image: busybox, args: [hi]}
",
        );
        let request = PodRequest {
            workflow: &wf,
            node_name: "wf",
            node_id: "wf",
            pod_name: "wf",
            template: &wf.spec.templates[0],
            scope: &Scope::new(),
        };
        let err = build(&request, &SETTINGS()).unwrap_err();
        assert!(err.starts_with("container.command is required"), "{err}");
    }
}
