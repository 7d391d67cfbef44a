//! Artifacts of pod nodes, as upstream's: the workflow's artifact repository (read once into
//! `status.artifactRepositoryRef`), input artifacts resolved from arguments (`from` another
//! node's output, an S3 key, raw data) and fetched by the init container into the
//! `input-artifacts` emptyDir that the main container mounts at each artifact's path, and
//! output artifacts uploaded by the main container's executor under the repository's
//! `keyFormat`. Credentials come from the repository's Secrets as environment variables.

use std::collections::BTreeMap;

use ferry_exec::artifacts::{INPUTS_DIR, Input, Output, PLAN_ENV, Plan, Source};
use ferry_exec::git::GitSource;
use ferry_exec::s3::Location;
use ferry_types::Workflow;
use ferry_types::workflow::{
    Artifact, ArtifactRepository, ArtifactRepositoryRefStatus, DEFAULT_KEY_FORMAT,
    DEFAULT_REPOSITORY_ANNOTATION, GitArtifact, REPOSITORIES_CONFIG_MAP, S3Artifact,
    SecretKeySelector, Template,
};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::Api;
use kube::{Client, ResourceExt};
use serde_json::{Value, json};

use crate::expr::{Scope, substitute, substitute_json};
use crate::pod::MAIN;

/// The emptyDir input artifacts are fetched into (upstream's name).
const VOLUME: &str = "input-artifacts";

/// Reads the workflow's artifact repository into its status, once, when one of its templates
/// has artifacts: `spec.artifactRepositoryRef`'s ConfigMap and key, else the
/// `artifact-repositories` ConfigMap's default key. A missing ConfigMap or key is left out;
/// the nodes that need a repository then fail naming it.
pub async fn store_repository(client: &Client, workflow: &mut Workflow) -> Result<(), kube::Error> {
    let status = workflow.status.get_or_insert_default();
    let referenced = status.stored_workflow_template_spec.iter();
    let mut templates = (workflow.spec.templates.iter())
        .chain(referenced.flat_map(|s| &s.templates))
        .chain(status.stored_templates.values());
    let has_artifacts = templates.any(|t| {
        t.inputs.as_ref().is_some_and(|i| !i.artifacts.is_empty())
            || t.outputs.as_ref().is_some_and(|o| !o.artifacts.is_empty())
    });
    if !has_artifacts || status.artifact_repository_ref.is_some() {
        return Ok(());
    }
    let namespace = workflow.metadata.namespace.clone().unwrap_or_default();
    let reference = workflow
        .spec
        .artifact_repository_ref
        .clone()
        .unwrap_or_default();
    let name = reference
        .config_map
        .unwrap_or_else(|| REPOSITORIES_CONFIG_MAP.into());
    let Some(config_map) = Api::<ConfigMap>::namespaced(client.clone(), &namespace)
        .get_opt(&name)
        .await?
    else {
        return Ok(());
    };
    let key = reference.key.or_else(|| {
        config_map
            .annotations()
            .get(DEFAULT_REPOSITORY_ANNOTATION)
            .cloned()
    });
    let repository = key
        .as_ref()
        .and_then(|k| config_map.data.as_ref()?.get(k))
        .and_then(|yaml| serde_yaml::from_str::<ArtifactRepository>(yaml).ok());
    if let Some(repository) = repository {
        status.artifact_repository_ref = Some(ArtifactRepositoryRefStatus {
            config_map: Some(name),
            key,
            namespace: Some(namespace),
            artifact_repository: Some(repository),
        });
    }
    Ok(())
}

/// The workflow's S3 repository, as stored in its status.
pub fn repository(workflow: &Workflow) -> Option<&S3Artifact> {
    workflow
        .status
        .as_ref()?
        .artifact_repository_ref
        .as_ref()?
        .artifact_repository
        .as_ref()?
        .s3
        .as_ref()
}

/// An artifact argument with its tags substituted; `from` becomes the location of the output
/// artifact it names.
pub fn resolve_argument(argument: &Artifact, scope: &Scope) -> Result<Artifact, String> {
    let field = format!("arguments.artifacts.{}", argument.name);
    if let Some(from) = &argument.from {
        let source = substitute(from, scope).map_err(|e| format!("{field}.from: {e}"))?;
        let source: Artifact = serde_json::from_str(&source)
            .map_err(|_| format!("{field}.from: {from} is not an artifact"))?;
        return Ok(Artifact {
            name: argument.name.clone(),
            path: argument.path.clone(),
            from: None,
            s3: source.s3,
            raw: source.raw,
            git: source.git,
            ..argument.clone()
        });
    }
    let value = serde_json::to_value(argument).map_err(|e| e.to_string())?;
    let substituted = substitute_json(&value, scope).map_err(|e| format!("{field}: {e}"))?;
    serde_json::from_value(substituted).map_err(|e| format!("{field}: {e}"))
}

/// The template's input artifacts with their locations: the argument's, else the input's own.
/// An input without one is an error unless optional.
pub fn resolve_inputs(template: &Template, args: &[Artifact]) -> Result<Vec<Artifact>, String> {
    let declared = template.inputs.iter().flat_map(|i| &i.artifacts);
    let mut resolved = Vec::new();
    for input in declared {
        let given = args
            .iter()
            .find(|a| a.name == input.name && a.has_location());
        let mut artifact = input.clone();
        if let Some(given) = given {
            artifact.s3 = given.s3.clone();
            artifact.raw = given.raw.clone();
            artifact.git = given.git.clone();
        }
        if !artifact.has_location() && artifact.optional != Some(true) {
            return Err(format!("inputs.artifacts.{} was not supplied", input.name));
        }
        resolved.push(artifact);
    }
    Ok(resolved)
}

/// Environment variables holding credentials, one per distinct Secret key.
#[derive(Default)]
struct Credentials {
    vars: BTreeMap<(String, String), String>,
}

impl Credentials {
    fn var(&mut self, selector: &SecretKeySelector) -> String {
        let next = self.vars.len();
        self.vars
            .entry((selector.name.clone(), selector.key.clone()))
            .or_insert_with(|| format!("FERRY_CREDENTIAL_{next}"))
            .clone()
    }

    fn env(&self) -> Vec<Value> {
        self.vars
            .iter()
            .map(|((name, key), var)| {
                json!({"name": var, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
            })
            .collect()
    }

    fn git(&mut self, git: &GitArtifact) -> GitSource {
        GitSource {
            repo: git.repo.clone(),
            revision: git.revision.clone().filter(|r| !r.is_empty()),
            depth: git.depth,
            fetch: git.fetch.clone(),
            single_branch: git.single_branch,
            branch: git.branch.clone().filter(|b| !b.is_empty()),
            disable_submodules: git.disable_submodules,
            insecure_ignore_host_key: git.insecure_ignore_host_key,
            insecure_skip_tls: git.insecure_skip_tls,
            username_env: git.username_secret.as_ref().map(|s| self.var(s)),
            password_env: git.password_secret.as_ref().map(|s| self.var(s)),
            ssh_private_key_env: git.ssh_private_key_secret.as_ref().map(|s| self.var(s)),
        }
    }

    fn location(
        &mut self,
        own: Option<&S3Artifact>,
        repository: Option<&S3Artifact>,
        key: Option<String>,
        field: &str,
    ) -> Result<Location, String> {
        let merged = match (own, repository) {
            (Some(own), Some(repository)) => own.over(repository),
            (Some(own), None) => own.clone(),
            (None, Some(repository)) => repository.clone(),
            (None, None) => {
                return Err(format!(
                    "{field}: no artifact repository (ConfigMap {REPOSITORIES_CONFIG_MAP} or spec.artifactRepositoryRef) and no s3 location"
                ));
            }
        };
        let missing = |what: &str| format!("{field}: the S3 location has no {what}");
        Ok(Location {
            endpoint: merged.endpoint.ok_or_else(|| missing("endpoint"))?,
            bucket: merged.bucket.ok_or_else(|| missing("bucket"))?,
            key: key.or(merged.key).ok_or_else(|| missing("key"))?,
            insecure: merged.insecure.unwrap_or(false),
            region: merged.region,
            access_key_env: merged.access_key_secret.as_ref().map(|s| self.var(s)),
            secret_key_env: merged.secret_key_secret.as_ref().map(|s| self.var(s)),
        })
    }
}

/// The key an output artifact goes to: its own `s3.key`, else the repository's `keyFormat`
/// (upstream's `{{workflow.name}}/{{pod.name}}` by default) and `<name>.tgz`, or the file's
/// name with `archive: none`.
pub fn output_key(
    output: &Artifact,
    repository: Option<&S3Artifact>,
    scope: &Scope,
) -> Result<String, String> {
    if let Some(key) = output.s3.as_ref().and_then(|s| s.key.as_ref()) {
        return substitute(key, scope);
    }
    let format = repository
        .and_then(|r| r.key_format.as_deref())
        .unwrap_or(DEFAULT_KEY_FORMAT);
    let prefix = substitute(format, scope).map_err(|e| format!("keyFormat: {e}"))?;
    let file = if output.archive_none() {
        let path = output.path.as_deref().unwrap_or_default();
        path.trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string()
    } else {
        format!("{}.tgz", output.name)
    };
    Ok(format!("{}/{file}", prefix.trim_end_matches('/')))
}

/// Adds the artifacts to a node's pod: the init container's plan (inputs) and the main
/// container's (outputs), the credentials of both, and the inputs' volume and mounts.
pub fn attach(
    pod: &mut Pod,
    inputs: &[Artifact],
    template: &Template,
    repository: Option<&S3Artifact>,
    scope: &Scope,
) -> Result<(), String> {
    let outputs: Vec<&Artifact> = template.outputs.iter().flat_map(|o| &o.artifacts).collect();
    if inputs.is_empty() && outputs.is_empty() {
        return Ok(());
    }
    let mut credentials = Credentials::default();
    let mut init_plan = Plan::default();
    let mut mounts = Vec::new();
    for input in inputs {
        let field = format!("inputs.artifacts.{}", input.name);
        let path = input
            .path
            .as_deref()
            .ok_or_else(|| format!("{field}.path is required"))?;
        let path = substitute(path, scope)?;
        let source = if let Some(raw) = &input.raw {
            Source::Raw(raw.data.clone())
        } else if let Some(s3) = &input.s3 {
            Source::S3(credentials.location(Some(s3), repository, None, &field)?)
        } else if let Some(git) = &input.git {
            Source::Git(credentials.git(git))
        } else {
            continue; // An optional input that was not supplied.
        };
        init_plan.inputs.push(Input {
            name: input.name.clone(),
            source,
            archive_none: input.archive_none(),
            optional: input.optional == Some(true),
        });
        mounts.push(json!({"name": VOLUME, "mountPath": path, "subPath": input.name}));
    }
    let mut main_plan = Plan::default();
    for output in outputs {
        let field = format!("outputs.artifacts.{}", output.name);
        let path = output
            .path
            .as_deref()
            .ok_or_else(|| format!("{field}.path is required"))?;
        let key = output_key(output, repository, scope).map_err(|e| format!("{field}: {e}"))?;
        main_plan.outputs.push(Output {
            name: output.name.clone(),
            path: substitute(path, scope)?,
            location: credentials.location(output.s3.as_ref(), repository, Some(key), &field)?,
            archive_none: output.archive_none(),
            optional: output.optional == Some(true),
        });
    }

    let mut value = serde_json::to_value(&*pod).map_err(|e| e.to_string())?;
    let spec = &mut value["spec"];
    let env = credentials.env();
    let plan_env = |plan: &Plan| json!({"name": PLAN_ENV, "value": serde_json::to_string(plan).unwrap_or_default()});
    if !init_plan.inputs.is_empty() {
        push_all(
            &mut spec["volumes"],
            [json!({"name": VOLUME, "emptyDir": {}})],
        );
        let init = container(&mut spec["initContainers"], "init")?;
        push_all(
            &mut init["env"],
            env.iter().cloned().chain([plan_env(&init_plan)]),
        );
        push_all(
            &mut init["volumeMounts"],
            [json!({"name": VOLUME, "mountPath": INPUTS_DIR})],
        );
        let main = container(&mut spec["containers"], MAIN)?;
        push_all(&mut main["volumeMounts"], mounts);
    }
    if !main_plan.outputs.is_empty() {
        let main = container(&mut spec["containers"], MAIN)?;
        push_all(
            &mut main["env"],
            env.iter().cloned().chain([plan_env(&main_plan)]),
        );
    }
    *pod = serde_json::from_value(value).map_err(|e| e.to_string())?;
    Ok(())
}

fn container<'v>(containers: &'v mut Value, name: &str) -> Result<&'v mut Value, String> {
    containers
        .as_array_mut()
        .and_then(|list| list.iter_mut().find(|c| c["name"] == name))
        .ok_or_else(|| format!("the pod has no container {name}"))
}

fn push_all(list: &mut Value, items: impl IntoIterator<Item = Value>) {
    if !list.is_array() {
        *list = json!([]);
    }
    if let Value::Array(list) = list {
        list.extend(items);
    }
}

/// A finished node's output artifacts, as upstream's status shows them: name, path and the
/// key each was uploaded to. Returns the first declared one that is neither reported nor
/// optional, for the node's error.
pub fn reported_outputs(
    template: &Template,
    reported: &BTreeMap<String, String>,
) -> (Vec<Artifact>, Option<String>) {
    let mut missing = None;
    let mut outputs = Vec::new();
    for declared in template.outputs.iter().flat_map(|o| &o.artifacts) {
        match reported.get(&declared.name) {
            Some(key) => outputs.push(Artifact {
                name: declared.name.clone(),
                path: declared.path.clone(),
                archive: declared.archive.clone(),
                s3: Some(S3Artifact {
                    key: Some(key.clone()),
                    ..S3Artifact::default()
                }),
                ..Artifact::default()
            }),
            None if declared.optional == Some(true) => {}
            None => {
                missing.get_or_insert_with(|| {
                    format!("output artifact {} was not reported", declared.name)
                });
            }
        }
    }
    (outputs, missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(yaml: &str) -> Template {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn repository() -> S3Artifact {
        serde_yaml::from_str(
            "{endpoint: 'minio:9000', bucket: art, insecure: true,
              accessKeySecret: {name: cred, key: a}, secretKeySecret: {name: cred, key: s}}",
        )
        .unwrap()
    }

    fn scope() -> Scope {
        [
            ("workflow.name".to_string(), "wf".to_string()),
            ("pod.name".to_string(), "wf-gen-1".to_string()),
        ]
        .into()
    }

    #[test]
    fn output_keys_follow_upstreams_key_format() {
        let tgz: Artifact = serde_yaml::from_str("{name: out, path: /tmp/out}").unwrap();
        let none: Artifact =
            serde_yaml::from_str("{name: out, path: /tmp/report.txt, archive: {none: {}}}")
                .unwrap();
        let own: Artifact =
            serde_yaml::from_str("{name: out, path: /x, s3: {key: 'fixed/{{workflow.name}}'}}")
                .unwrap();
        assert_eq!(
            output_key(&tgz, None, &scope()).unwrap(),
            "wf/wf-gen-1/out.tgz"
        );
        assert_eq!(
            output_key(&none, None, &scope()).unwrap(),
            "wf/wf-gen-1/report.txt"
        );
        assert_eq!(output_key(&own, None, &scope()).unwrap(), "fixed/wf");
        let formatted = S3Artifact {
            key_format: Some("runs/{{workflow.name}}/".into()),
            ..repository()
        };
        assert_eq!(
            output_key(&tgz, Some(&formatted), &scope()).unwrap(),
            "runs/wf/out.tgz"
        );
    }

    #[test]
    fn from_takes_the_location_of_the_named_output() {
        let mut scope = scope();
        scope.insert(
            "steps.gen.outputs.artifacts.out".into(),
            r#"{"name":"out","path":"/tmp/out","s3":{"key":"wf/p/out.tgz"}}"#.into(),
        );
        let argument: Artifact =
            serde_yaml::from_str("{name: in, from: '{{steps.gen.outputs.artifacts.out}}'}")
                .unwrap();
        let resolved = resolve_argument(&argument, &scope).unwrap();
        assert_eq!(resolved.name, "in");
        assert_eq!(resolved.s3.unwrap().key.as_deref(), Some("wf/p/out.tgz"));
        let unknown: Artifact =
            serde_yaml::from_str("{name: in, from: '{{steps.nope.outputs.artifacts.out}}'}")
                .unwrap();
        let err = resolve_argument(&unknown, &scope).unwrap_err();
        assert!(
            err.starts_with("arguments.artifacts.in.from: failed to resolve"),
            "{err}"
        );
    }

    #[test]
    fn an_input_without_a_location_must_be_optional() {
        let consume = template(
            "{name: c, inputs: {artifacts: [{name: in, path: /in}, {name: maybe, path: /m, optional: true}, {name: raw, path: /r, raw: {data: x}}]}}",
        );
        let err = resolve_inputs(&consume, &[]).unwrap_err();
        assert_eq!(err, "inputs.artifacts.in was not supplied");
        let given: Artifact = serde_yaml::from_str("{name: in, s3: {key: k}}").unwrap();
        let inputs = resolve_inputs(&consume, &[given]).unwrap();
        assert_eq!(inputs[0].path.as_deref(), Some("/in"));
        assert_eq!(inputs[0].s3.as_ref().unwrap().key.as_deref(), Some("k"));
        assert!(!inputs[1].has_location());
        assert_eq!(inputs[2].raw.as_ref().unwrap().data, "x");
    }

    #[test]
    fn the_pod_gets_plans_credentials_and_mounts() {
        let t = template(
            "{name: t, outputs: {artifacts: [{name: out, path: /tmp/out}]}, container: {image: busybox, command: [true]}}",
        );
        let inputs: Vec<Artifact> =
            serde_yaml::from_str("[{name: in, path: /work/in, s3: {key: wf/p/in.tgz}}]").unwrap();
        let mut pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"initContainers": [{"name": "init", "image": "exec"}],
                     "containers": [{"name": "main", "image": "busybox"}]},
        }))
        .unwrap();
        attach(&mut pod, &inputs, &t, Some(&repository()), &scope()).unwrap();
        let pod = serde_json::to_value(&pod).unwrap();
        let init = &pod["spec"]["initContainers"][0];
        let main = &pod["spec"]["containers"][0];
        assert_eq!(
            init["env"][0],
            json!({"name": "FERRY_CREDENTIAL_0", "valueFrom": {"secretKeyRef": {"name": "cred", "key": "a"}}})
        );
        let plan: Plan = serde_json::from_str(init["env"][2]["value"].as_str().unwrap()).unwrap();
        let Source::S3(location) = &plan.inputs[0].source else {
            panic!("{plan:?}")
        };
        assert_eq!(
            (location.endpoint.as_str(), location.key.as_str()),
            ("minio:9000", "wf/p/in.tgz")
        );
        assert_eq!(
            location.secret_key_env.as_deref(),
            Some("FERRY_CREDENTIAL_1")
        );
        assert_eq!(
            main["volumeMounts"][0],
            json!({"name": "input-artifacts", "mountPath": "/work/in", "subPath": "in"})
        );
        let plan: Plan = serde_json::from_str(main["env"][2]["value"].as_str().unwrap()).unwrap();
        assert_eq!(plan.outputs[0].location.key, "wf/wf-gen-1/out.tgz");
        assert_eq!(pod["spec"]["volumes"][0]["name"], "input-artifacts");

        let mut pod: Pod = serde_json::from_value(json!({"spec": {"containers": []}})).unwrap();
        let t = template("{name: t, outputs: {artifacts: [{name: out, path: /o}]}}");
        let err = attach(&mut pod, &[], &t, None, &scope()).unwrap_err();
        assert!(
            err.starts_with("outputs.artifacts.out: no artifact repository"),
            "{err}"
        );
    }
    #[test]
    fn a_git_input_names_its_credentials_and_needs_no_repository() {
        let t = template("{name: g, container: {image: alpine/git, command: [true]}}");
        let inputs: Vec<Artifact> = serde_yaml::from_str(
            "[{name: src, path: /src, git: {repo: 'https://git.example/app.git', revision: v1, depth: 1,
               usernameSecret: {name: git, key: user}, passwordSecret: {name: git, key: token},
               singleBranch: true, branch: main, fetch: ['refs/meta/*:refs/meta/*'], insecureSkipTLS: true}}]",
        )
        .unwrap();
        let mut pod: Pod = serde_json::from_value(json!({
            "spec": {"initContainers": [{"name": "init", "image": "exec"}],
                     "containers": [{"name": "main", "image": "alpine/git"}]},
        }))
        .unwrap();
        attach(&mut pod, &inputs, &t, None, &scope()).unwrap();
        let pod = serde_json::to_value(&pod).unwrap();
        let init = &pod["spec"]["initContainers"][0];
        assert_eq!(
            init["env"][1],
            json!({"name": "FERRY_CREDENTIAL_0", "valueFrom": {"secretKeyRef": {"name": "git", "key": "user"}}})
        );
        let plan: Plan = serde_json::from_str(init["env"][2]["value"].as_str().unwrap()).unwrap();
        let Source::Git(git) = &plan.inputs[0].source else {
            panic!("{plan:?}")
        };
        assert_eq!(
            git,
            &GitSource {
                repo: "https://git.example/app.git".into(),
                revision: Some("v1".into()),
                depth: Some(1),
                fetch: vec!["refs/meta/*:refs/meta/*".into()],
                single_branch: true,
                branch: Some("main".into()),
                insecure_skip_tls: true,
                username_env: Some("FERRY_CREDENTIAL_0".into()),
                password_env: Some("FERRY_CREDENTIAL_1".into()),
                ..GitSource::default()
            }
        );
        assert_eq!(
            plan.secret_variables(),
            ["FERRY_CREDENTIAL_0", "FERRY_CREDENTIAL_1"]
        );
        assert_eq!(
            pod["spec"]["containers"][0]["volumeMounts"][0],
            json!({"name": "input-artifacts", "mountPath": "/src", "subPath": "src"})
        );
    }
}
