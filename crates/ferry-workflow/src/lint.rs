//! `argo lint --offline`: Workflows, WorkflowTemplates, ClusterWorkflowTemplates and
//! CronWorkflows checked with [`validate`], the files' (Cluster)WorkflowTemplates standing in
//! for the cluster's. Upstream's rules: other kinds are ignored, an error names the object
//! (`in "name" (Kind): ...`), and finding nothing to lint is a failure.

use std::collections::BTreeMap;

use ferry_types::workflow::{Arguments, Parameter, WorkflowSpec};
use ferry_types::{ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowTemplate};
use kube::api::ListParams;
use kube::{Api, Client};
use serde_json::Value;

use crate::templates::{self, Library, join};
use crate::validate::validate;

/// The first error of linting `files` as a create checks them (upstream's servers do), with
/// `namespace`'s WorkflowTemplates and the ClusterWorkflowTemplates (when readable) there for
/// references; the files' own come after and win.
pub async fn first_error(
    client: &Client,
    namespace: &str,
    files: Vec<(String, Vec<Value>)>,
) -> anyhow::Result<Option<String>> {
    let mut cluster = Vec::new();
    let listed = Api::<WorkflowTemplate>::namespaced(client.clone(), namespace)
        .list(&ListParams::default())
        .await?;
    for template in listed.items {
        cluster.push(serde_json::to_value(template)?);
    }
    match Api::<ClusterWorkflowTemplate>::all(client.clone())
        .list(&ListParams::default())
        .await
    {
        Ok(listed) => {
            for template in listed.items {
                cluster.push(serde_json::to_value(template)?);
            }
        }
        Err(kube::Error::Api(status)) if status.is_forbidden() => {}
        Err(err) => return Err(err.into()),
    }
    let mut checked = vec![(String::from("(cluster)"), cluster)];
    checked.extend(files);
    let results = lint(&checked);
    Ok(results.into_iter().skip(1).flat_map(|r| r.errors).next())
}

/// One file's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Linted {
    pub file: String,
    /// Whether the file held anything of the linted kinds.
    pub linted: bool,
    pub errors: Vec<String>,
}

/// Lints the documents of each file (`(path, documents)`).
pub fn lint(files: &[(String, Vec<Value>)]) -> Vec<Linted> {
    let all = || files.iter().flat_map(|(_, docs)| docs);
    let namespaced: Vec<WorkflowTemplate> = all()
        .filter(|d| kind(d) == "WorkflowTemplate")
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect();
    let cluster: Vec<ClusterWorkflowTemplate> = all()
        .filter(|d| kind(d) == "ClusterWorkflowTemplate")
        .filter_map(|d| serde_json::from_value(d.clone()).ok())
        .collect();
    let stored = templates::offline(&namespaced, &cluster);
    let specs = Specs {
        namespaced: &namespaced,
        cluster: &cluster,
        stored: &stored,
    };
    files
        .iter()
        .map(|(file, docs)| {
            let mut out = Linted {
                file: file.clone(),
                linted: false,
                errors: Vec::new(),
            };
            for (index, doc) in docs.iter().enumerate() {
                let kind = kind(doc);
                let checked = match kind {
                    "Workflow" => specs.workflow(doc),
                    "WorkflowTemplate" | "ClusterWorkflowTemplate" => specs.template(doc, kind),
                    "CronWorkflow" => specs.cron(doc),
                    _ => continue,
                };
                out.linted = true;
                if let Err(message) = checked {
                    out.errors.push(format!(
                        "in {:?} ({kind}): {message}",
                        object_name(doc, index)
                    ));
                }
            }
            out
        })
        .collect()
}

fn kind(doc: &Value) -> &str {
    doc.get("kind").and_then(Value::as_str).unwrap_or("")
}

/// Upstream's object name in messages: the name, else the generateName, else `object #N`.
fn object_name(doc: &Value, index: usize) -> String {
    let meta = |field: &str| {
        doc.pointer(&format!("/metadata/{field}"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from)
    };
    meta("name")
        .or_else(|| meta("generateName"))
        .unwrap_or_else(|| format!("object #{}", index + 1))
}

struct Specs<'a> {
    namespaced: &'a [WorkflowTemplate],
    cluster: &'a [ClusterWorkflowTemplate],
    stored: &'a BTreeMap<String, ferry_types::workflow::Template>,
}

impl Specs<'_> {
    fn workflow(&self, doc: &Value) -> Result<(), String> {
        let workflow: Workflow = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        self.check(&workflow.spec)
    }

    fn cron(&self, doc: &Value) -> Result<(), String> {
        let cron: CronWorkflow = serde_json::from_value(doc.clone()).map_err(|e| e.to_string())?;
        self.check(&cron.spec.workflow_spec)
    }

    /// A workflow spec, joined under the WorkflowTemplate it references.
    fn check(&self, spec: &WorkflowSpec) -> Result<(), String> {
        let joined;
        let spec = match &spec.workflow_template_ref {
            None => spec,
            Some(reference) => {
                let found = if reference.cluster_scope == Some(true) {
                    self.cluster
                        .iter()
                        .find(|t| t.metadata.name.as_ref() == Some(&reference.name))
                        .map(|t| &t.spec)
                } else {
                    self.namespaced
                        .iter()
                        .find(|t| t.metadata.name.as_ref() == Some(&reference.name))
                        .map(|t| &t.spec)
                };
                let Some(template) = found else {
                    let kind = match reference.cluster_scope {
                        Some(true) => "ClusterWorkflowTemplate",
                        _ => "WorkflowTemplate",
                    };
                    return Err(format!(
                        "spec.workflowTemplateRef: {kind} {:?} not found",
                        reference.name
                    ));
                };
                joined = join(spec, template)?;
                &joined
            }
        };
        let library = Library {
            local: spec,
            stored: self.stored,
        };
        validate(spec, library).map(|_| ())
    }

    /// A (Cluster)WorkflowTemplate: its entrypoint and arguments may come with the submit, so
    /// the entrypoint (else the first template) is checked with every input given.
    fn template(&self, doc: &Value, kind: &str) -> Result<(), String> {
        let mut spec = if kind == "WorkflowTemplate" {
            serde_json::from_value::<WorkflowTemplate>(doc.clone())
                .map_err(|e| e.to_string())?
                .spec
        } else {
            serde_json::from_value::<ClusterWorkflowTemplate>(doc.clone())
                .map_err(|e| e.to_string())?
                .spec
        };
        let Some(entrypoint) = spec
            .entrypoint
            .clone()
            .or_else(|| spec.templates.first().map(|t| t.name.clone()))
        else {
            return Err("spec.templates: at least one template is required".into());
        };
        let inputs: Vec<String> = spec
            .templates
            .iter()
            .find(|t| t.name == entrypoint)
            .iter()
            .flat_map(|t| t.inputs.iter().flat_map(|i| &i.parameters))
            .map(|p| p.name.clone())
            .collect();
        let arguments = spec.arguments.get_or_insert_with(Arguments::default);
        for name in inputs {
            if !arguments.parameters.iter().any(|p| p.name == name) {
                arguments.parameters.push(Parameter {
                    name,
                    value: Some(String::new()),
                    ..Parameter::default()
                });
            }
        }
        spec.entrypoint = Some(entrypoint);
        let library = Library {
            local: &spec,
            stored: self.stored,
        };
        validate(&spec, library).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(yaml: &str) -> Vec<Value> {
        yaml.split("\n---\n")
            .map(|d| serde_yaml::from_str(d).unwrap())
            .collect()
    }

    #[test]
    fn errors_name_the_object_and_the_field() {
        let good = docs(
            "apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: lib}
spec:
  templates:
  - name: hello
    inputs: {parameters: [{name: who}]}
    container: {image: busybox}
---
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: uses-lib-}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: hi, templateRef: {name: lib, template: hello}, arguments: {parameters: [{name: who, value: x}]}}]]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: ignored}",
        );
        let bad = docs(
            "apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: cyclic}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {name: a, template: main, depends: b}
      - {name: b, template: main, depends: a}
---
apiVersion: argoproj.io/v1alpha1
kind: CronWorkflow
metadata: {name: nightly}
spec:
  schedule: '0 0 * * *'
  workflowSpec:
    entrypoint: main
    templates: [{name: main, steps: [[{name: s, template: nowhere}]]}]",
        );
        let nothing = docs("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}");
        let out = lint(&[
            ("good.yaml".into(), good),
            ("bad.yaml".into(), bad),
            ("cm.yaml".into(), nothing),
        ]);
        assert_eq!(out[0].errors, Vec::<String>::new());
        assert!(out[0].linted);
        assert_eq!(out[1].errors.len(), 2, "{:?}", out[1].errors);
        assert!(
            out[1].errors[0].starts_with("in \"cyclic\" (Workflow): templates.main: "),
            "{}",
            out[1].errors[0]
        );
        assert_eq!(
            out[1].errors[1],
            "in \"nightly\" (CronWorkflow): templates.main.s: template \"nowhere\" not found"
        );
        assert!(!out[2].linted);
    }
}
