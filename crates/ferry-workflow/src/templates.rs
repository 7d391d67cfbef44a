//! Where a step's template comes from: the workflow's own templates, or a WorkflowTemplate's
//! or ClusterWorkflowTemplate's through `templateRef`. Referenced templates are kept in the
//! status (`storedTemplates`, upstream's keys) when the workflow first needs them, so a later
//! change of the WorkflowTemplate does not change a running workflow; inside a referenced
//! template, `template: X` means that WorkflowTemplate's X (upstream's template scope).

use std::collections::BTreeMap;

use ferry_types::workflow::{Template, TemplateRef, WorkflowSpec};
use ferry_types::{ClusterWorkflowTemplate, WorkflowTemplate};
use serde_json::Value;

/// The holder of a set of templates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Holder {
    /// The workflow's own `spec.templates`.
    Local,
    /// A WorkflowTemplate of the workflow's namespace.
    Namespaced(String),
    /// A ClusterWorkflowTemplate.
    Cluster(String),
}

impl Holder {
    pub fn of_ref(reference: &TemplateRef) -> Self {
        if reference.cluster_scope == Some(true) {
            Holder::Cluster(reference.name.clone())
        } else {
            Holder::Namespaced(reference.name.clone())
        }
    }

    /// The status key of this holder's template `template` (upstream's storedTemplates key).
    pub fn key(&self, template: &str) -> Option<String> {
        match self {
            Holder::Local => None,
            Holder::Namespaced(name) => Some(format!("namespaced/{name}/{template}")),
            Holder::Cluster(name) => Some(format!("cluster/{name}/{template}")),
        }
    }

    /// A node's `templateScope`.
    pub fn scope(&self, workflow: &str) -> String {
        match self {
            Holder::Local => format!("local/{workflow}"),
            Holder::Namespaced(name) => format!("namespaced/{name}"),
            Holder::Cluster(name) => format!("cluster/{name}"),
        }
    }

    /// The holder a node's `templateScope` names.
    pub fn from_scope(scope: Option<&str>) -> Self {
        match scope.and_then(|s| s.split_once('/')) {
            Some(("namespaced", name)) => Holder::Namespaced(name.into()),
            Some(("cluster", name)) => Holder::Cluster(name.into()),
            _ => Holder::Local,
        }
    }

    /// How errors name it.
    pub fn describe(&self) -> String {
        match self {
            Holder::Local => "the workflow".into(),
            Holder::Namespaced(name) => format!("WorkflowTemplate {name:?}"),
            Holder::Cluster(name) => format!("ClusterWorkflowTemplate {name:?}"),
        }
    }
}

/// The template a step or task runs: `template` in the step's holder, or its `templateRef`.
pub fn target(
    from: &Holder,
    template: Option<&str>,
    reference: Option<&TemplateRef>,
) -> Option<(Holder, String)> {
    match (reference, template) {
        (Some(reference), _) => Some((Holder::of_ref(reference), reference.template.clone())),
        (None, Some(template)) => Some((from.clone(), template.into())),
        (None, None) => None,
    }
}

/// Every template reachable from a spec: its own, and the stored referenced ones.
#[derive(Debug, Clone, Copy)]
pub struct Library<'a> {
    pub local: &'a WorkflowSpec,
    pub stored: &'a BTreeMap<String, Template>,
}

impl<'a> Library<'a> {
    pub fn get(&self, holder: &Holder, name: &str) -> Option<&'a Template> {
        match holder.key(name) {
            None => self.local.templates.iter().find(|t| t.name == name),
            Some(key) => self.stored.get(&key),
        }
    }

    /// The templates of `holder`.
    pub fn templates(&self, holder: &Holder) -> Vec<&'a Template> {
        match holder.key("") {
            None => self.local.templates.iter().collect(),
            Some(prefix) => self
                .stored
                .iter()
                .filter(|(k, _)| k.starts_with(&prefix))
                .map(|(_, t)| t)
                .collect(),
        }
    }
}

/// The holders `templates` reference that `stored` lacks.
pub fn missing<'t>(
    templates: impl IntoIterator<Item = &'t Template>,
    stored: &BTreeMap<String, Template>,
) -> Vec<Holder> {
    let mut missing = Vec::new();
    for template in templates {
        let steps = template.steps.iter().flatten().flatten();
        let refs = steps.filter_map(|s| s.template_ref.as_ref()).chain(
            template
                .dag
                .iter()
                .flat_map(|d| &d.tasks)
                .filter_map(|t| t.template_ref.as_ref()),
        );
        for reference in refs {
            let holder = Holder::of_ref(reference);
            let prefix = holder.key("").unwrap_or_default();
            if !stored.keys().any(|k| k.starts_with(&prefix)) && !missing.contains(&holder) {
                missing.push(holder);
            }
        }
    }
    missing
}

/// Adds every template of `spec`, held by `holder`, to `stored`.
pub fn store(stored: &mut BTreeMap<String, Template>, holder: &Holder, spec: &WorkflowSpec) {
    for template in &spec.templates {
        if let Some(key) = holder.key(&template.name) {
            stored.insert(key, template.clone());
        }
    }
}

/// The stored templates of a set of WorkflowTemplates and ClusterWorkflowTemplates (for
/// offline validation, where the files stand in for the cluster).
pub fn offline(
    namespaced: &[WorkflowTemplate],
    cluster: &[ClusterWorkflowTemplate],
) -> BTreeMap<String, Template> {
    let mut stored = BTreeMap::new();
    for template in namespaced {
        let name = template.metadata.name.clone().unwrap_or_default();
        store(&mut stored, &Holder::Namespaced(name), &template.spec);
    }
    for template in cluster {
        let name = template.metadata.name.clone().unwrap_or_default();
        store(&mut stored, &Holder::Cluster(name), &template.spec);
    }
    stored
}

/// A Workflow's spec over the spec its `workflowTemplateRef` names, as upstream joins them:
/// the workflow's fields win, templates and `arguments.parameters` are merged by name.
pub fn join(workflow: &WorkflowSpec, template: &WorkflowSpec) -> Result<WorkflowSpec, String> {
    let mut base = serde_json::to_value(template).map_err(|e| e.to_string())?;
    let over = serde_json::to_value(workflow).map_err(|e| e.to_string())?;
    merge(&mut base, &over, "");
    serde_json::from_value(base).map_err(|e| format!("joining workflowTemplateRef: {e}"))
}

/// Lists merged by their items' `name` (strategic merge's patch key of these fields).
const MERGED_BY_NAME: [&str; 2] = ["/templates", "/arguments/parameters"];

fn merge(base: &mut Value, over: &Value, path: &str) {
    match (base, over) {
        (Value::Object(base), Value::Object(over)) => {
            for (key, value) in over {
                let path = format!("{path}/{key}");
                match base.get_mut(key) {
                    Some(existing) => merge(existing, value, &path),
                    None => {
                        base.insert(key.clone(), value.clone());
                    }
                }
            }
        }
        (Value::Array(base), Value::Array(over)) if MERGED_BY_NAME.contains(&path) => {
            for item in over {
                let name = item.get("name");
                match base
                    .iter_mut()
                    .find(|b| name.is_some() && b.get("name") == name)
                {
                    Some(existing) => *existing = item.clone(),
                    None => base.push(item.clone()),
                }
            }
        }
        (base, over) => *base = over.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workflow_wins_and_names_merge() {
        let template: WorkflowSpec = serde_yaml::from_str(
            "entrypoint: main
serviceAccountName: builder
arguments: {parameters: [{name: a, value: '1'}, {name: b, value: '2'}]}
templates: [{name: main, container: {image: x}}, {name: other, container: {image: y}}]
",
        )
        .unwrap();
        let workflow: WorkflowSpec = serde_yaml::from_str(
            "arguments: {parameters: [{name: b, value: '20'}, {name: c, value: '30'}]}
templates: [{name: other, container: {image: z}}]
",
        )
        .unwrap();
        let joined = join(&workflow, &template).unwrap();
        assert_eq!(joined.entrypoint.as_deref(), Some("main"));
        assert_eq!(joined.service_account_name.as_deref(), Some("builder"));
        let values: Vec<(String, Option<String>)> = joined
            .arguments
            .unwrap()
            .parameters
            .into_iter()
            .map(|p| (p.name, p.value))
            .collect();
        assert_eq!(
            values,
            [
                ("a".into(), Some("1".into())),
                ("b".into(), Some("20".into())),
                ("c".into(), Some("30".into()))
            ]
        );
        assert_eq!(joined.templates.len(), 2);
        assert_eq!(
            joined.templates[1].container.as_ref().unwrap()["image"],
            "z"
        );
    }

    #[test]
    fn references_resolve_through_stored_templates() {
        let spec: WorkflowSpec = serde_yaml::from_str(
            "templates: [{name: main, steps: [[{name: s, templateRef: {name: lib, template: hello}}]]}]",
        )
        .unwrap();
        let lib: WorkflowSpec =
            serde_yaml::from_str("templates: [{name: hello, container: {image: x}}]").unwrap();
        let mut stored = BTreeMap::new();
        assert_eq!(
            missing(&spec.templates, &stored),
            [Holder::Namespaced("lib".into())]
        );
        store(&mut stored, &Holder::Namespaced("lib".into()), &lib);
        assert!(missing(&spec.templates, &stored).is_empty());
        let library = Library {
            local: &spec,
            stored: &stored,
        };
        let step = &spec.templates[0].steps.as_ref().unwrap()[0][0];
        let (holder, name) = target(
            &Holder::Local,
            step.template.as_deref(),
            step.template_ref.as_ref(),
        )
        .unwrap();
        assert_eq!(library.get(&holder, &name).unwrap().name, "hello");
        assert_eq!(holder.scope("wf"), "namespaced/lib");
        assert_eq!(Holder::from_scope(Some("namespaced/lib")), holder);
    }
}
