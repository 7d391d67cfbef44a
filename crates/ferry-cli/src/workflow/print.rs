//! How `ferry wf` shows workflows: `argo get`'s summary and node tree, `argo list`'s table.

use std::collections::BTreeMap;

use ferry_types::Workflow;
use ferry_types::workflow::{NodeStatus, Phase};
use ferry_workflow::control::is_suspended;
use ferry_workflow::names::pod_name;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::output::Table;

/// `Running (Suspended)` while a suspended workflow waits, else its phase (`Pending` before
/// the controller saw it).
pub fn status(workflow: &Workflow) -> String {
    let phase = workflow.status.as_ref().and_then(|s| s.phase);
    let text = phase.map_or("Pending", Phase::as_str);
    if phase.is_none_or(|p| !p.is_completed()) && is_suspended(workflow) {
        return format!("{text} (Suspended)");
    }
    text.to_string()
}

/// `5s`, `2m3s`, `1h0m4s`.
pub fn duration(from: &Time, to: Option<&Time>) -> String {
    let end = to.map_or_else(jiff::Timestamp::now, |t| t.0);
    let seconds = end.duration_since(from.0).as_secs().max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{}s", seconds / 60, seconds % 60),
        _ => format!("{}h{}m{}s", seconds / 3600, seconds / 60 % 60, seconds % 60),
    }
}

/// `argo get`: the summary, then the node tree (the exit handler's after the main one).
pub fn workflow(workflow: &Workflow) -> String {
    let name = workflow.metadata.name.clone().unwrap_or_default();
    let status = workflow.status.clone().unwrap_or_default();
    let mut fields: Vec<(String, String)> = vec![
        ("Name:".into(), name.clone()),
        (
            "Namespace:".into(),
            workflow.metadata.namespace.clone().unwrap_or_default(),
        ),
        (
            "ServiceAccount:".into(),
            workflow
                .spec
                .service_account_name
                .clone()
                .unwrap_or_else(|| "unset (will run with the default ServiceAccount)".into()),
        ),
        ("Status:".into(), self::status(workflow)),
    ];
    if let Some(message) = status.message.as_ref().filter(|m| !m.is_empty()) {
        fields.push(("Message:".into(), message.clone()));
    }
    if let Some(created) = &workflow.metadata.creation_timestamp {
        fields.push(("Created:".into(), created.0.to_string()));
    }
    if let Some(started) = &status.started_at {
        fields.push(("Started:".into(), started.0.to_string()));
        if let Some(finished) = &status.finished_at {
            fields.push(("Finished:".into(), finished.0.to_string()));
        }
        fields.push((
            "Duration:".into(),
            duration(started, status.finished_at.as_ref()),
        ));
    }
    fields.push((
        "Progress:".into(),
        status.progress.clone().unwrap_or_default(),
    ));
    let parameters = workflow.spec.arguments.iter().flat_map(|a| &a.parameters);
    let parameters: Vec<_> = parameters.filter(|p| p.value.is_some()).collect();
    if !parameters.is_empty() {
        fields.push(("Parameters:".into(), String::new()));
        for parameter in parameters {
            fields.push((
                format!("  {}:", parameter.name),
                parameter.value.clone().unwrap_or_default(),
            ));
        }
    }
    let mut out: String = fields
        .iter()
        .map(|(key, value)| format!("{key:<20} {value}").trim_end().to_string() + "\n")
        .collect();
    let nodes = &status.nodes;
    let Some(root) = nodes.values().find(|n| n.name == name) else {
        return out;
    };
    let tree = Tree::new(&name, nodes);
    let mut table = Table::new(&["STEP", "TEMPLATE", "PODNAME", "DURATION", "MESSAGE"]);
    tree.render(root, " ", "", &mut table);
    let exit = format!("{name}.onExit");
    if let Some(exit) = nodes.values().find(|n| n.name == exit) {
        table.row(Vec::new());
        tree.render(exit, " ", "", &mut table);
    }
    out.push('\n');
    out.push_str(&table.render());
    out
}

fn icon(node: &NodeStatus) -> &'static str {
    if node.type_ == "Suspend" && node.phase == Phase::Running {
        return "ǁ";
    }
    match node.phase {
        Phase::Pending => "◷",
        Phase::Running => "●",
        Phase::Succeeded => "✔",
        Phase::Skipped | Phase::Omitted => "○",
        Phase::Failed => "✖",
        Phase::Error => "⚠",
    }
}

/// The nodes as `argo get` nests them: under the steps or DAG they belong to, a fanned-out
/// task's items under the task, a retry's attempts under the retry; step groups are not shown,
/// their steps come in group order.
struct Tree<'a> {
    workflow: &'a str,
    children: BTreeMap<&'a str, Vec<&'a NodeStatus>>,
}

impl<'a> Tree<'a> {
    fn new(workflow: &'a str, nodes: &'a BTreeMap<String, NodeStatus>) -> Self {
        let mut children: BTreeMap<&str, Vec<&NodeStatus>> = BTreeMap::new();
        for node in nodes.values() {
            if let Some(parent) = Self::parent(nodes, node) {
                children.entry(parent).or_default().push(node);
            }
        }
        for list in children.values_mut() {
            list.sort_by(|a, b| {
                let at = |n: &NodeStatus| n.started_at.as_ref().map(|t| t.0);
                at(a).cmp(&at(b)).then_with(|| a.name.cmp(&b.name))
            });
        }
        Self { workflow, children }
    }

    /// The node `node` is shown under.
    fn parent(nodes: &'a BTreeMap<String, NodeStatus>, node: &NodeStatus) -> Option<&'a str> {
        let holder = nodes.values().find(|p| {
            p.children.contains(&node.id)
                && match p.type_.as_str() {
                    "StepGroup" => node.name.starts_with(&format!("{}.", p.name)),
                    "TaskGroup" | "Retry" => node.name.starts_with(&format!("{}(", p.name)),
                    _ => node.boundary_id.as_deref() == Some(p.id.as_str()),
                }
        });
        holder.map(|p| p.id.as_str()).or_else(|| {
            let boundary = node.boundary_id.as_deref()?;
            nodes.get_key_value(boundary).map(|(k, _)| k.as_str())
        })
    }

    /// The nodes shown under `node`: a step group's steps take its place.
    fn shown(&self, node: &NodeStatus) -> Vec<&'a NodeStatus> {
        let mut shown = Vec::new();
        let mut groups: Vec<&NodeStatus> = Vec::new();
        for child in self.children.get(node.id.as_str()).into_iter().flatten() {
            if child.type_ == "StepGroup" {
                groups.push(child);
            } else {
                shown.push(*child);
            }
        }
        // `[10]` after `[9]`: by the index in the display name.
        groups.sort_by_key(|g| {
            g.display_name
                .trim_matches(|c| c == '[' || c == ']')
                .parse::<usize>()
                .unwrap_or(usize::MAX)
        });
        for group in groups {
            shown.extend(self.shown(group));
        }
        shown
    }

    fn render(&self, node: &NodeStatus, lead: &str, indent: &str, table: &mut Table) {
        let name = if node.name == self.workflow {
            node.name.clone()
        } else {
            node.display_name.clone()
        };
        let pod = if node.type_ == "Pod" {
            let template = node
                .template_ref
                .as_ref()
                .map(|r| r.template.clone())
                .or_else(|| node.template_name.clone())
                .unwrap_or_default();
            pod_name(self.workflow, &node.name, &template)
        } else {
            String::new()
        };
        let duration = match (&node.started_at, node.type_.as_str()) {
            (Some(started), "Pod") => duration(started, node.finished_at.as_ref()),
            _ => String::new(),
        };
        table.row(vec![
            format!("{lead}{} {name}", icon(node)),
            node.template_name.clone().unwrap_or_default(),
            pod,
            duration,
            node.message.clone().unwrap_or_default(),
        ]);
        let shown = self.shown(node);
        for (index, child) in shown.iter().enumerate() {
            let last = index + 1 == shown.len();
            let branch = if last { "└─" } else { "├─" };
            let below = if last { "  " } else { " │" };
            self.render(
                child,
                &format!("{indent} {branch}"),
                &format!("{indent}{below}"),
                table,
            );
        }
    }
}

/// `argo list`'s table.
pub fn list(workflows: &[Workflow], namespaces: bool) -> String {
    let mut headers = vec!["NAME", "STATUS", "AGE", "DURATION", "MESSAGE"];
    if namespaces {
        headers.insert(0, "NAMESPACE");
    }
    let mut table = Table::new(&headers);
    for workflow in workflows {
        let status = workflow.status.clone().unwrap_or_default();
        let age = workflow
            .metadata
            .creation_timestamp
            .as_ref()
            .map(|c| duration(c, None))
            .unwrap_or_default();
        let took = status
            .started_at
            .as_ref()
            .map(|s| duration(s, status.finished_at.as_ref()))
            .unwrap_or_default();
        let mut row = vec![
            workflow.metadata.name.clone().unwrap_or_default(),
            self::status(workflow),
            age,
            took,
            status.message.clone().unwrap_or_default(),
        ];
        if namespaces {
            row.insert(0, workflow.metadata.namespace.clone().unwrap_or_default());
        }
        table.row(row);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(
        id: &str,
        display: &str,
        type_: &str,
        phase: Phase,
        boundary: Option<&str>,
        children: &[&str],
    ) -> NodeStatus {
        NodeStatus {
            id: id.into(),
            name: id.into(),
            display_name: display.into(),
            type_: type_.into(),
            template_name: Some("t".into()),
            phase,
            boundary_id: boundary.map(Into::into),
            children: children.iter().map(|c| c.to_string()).collect(),
            ..NodeStatus::default()
        }
    }

    #[test]
    fn steps_show_in_group_order_and_retries_hold_their_attempts() {
        let mut wf = Workflow::default();
        wf.metadata.name = Some("wf".into());
        let status = wf.status.get_or_insert_default();
        status.phase = Some(Phase::Failed);
        for n in [
            node("wf", "wf", "Steps", Phase::Failed, None, &["wf[0]"]),
            node(
                "wf[0]",
                "[0]",
                "StepGroup",
                Phase::Succeeded,
                Some("wf"),
                &["wf[0].a"],
            ),
            node(
                "wf[0].a",
                "a",
                "Pod",
                Phase::Succeeded,
                Some("wf"),
                &["wf[1]"],
            ),
            node(
                "wf[1]",
                "[1]",
                "StepGroup",
                Phase::Failed,
                Some("wf"),
                &["wf[1].b"],
            ),
            node(
                "wf[1].b",
                "b",
                "Retry",
                Phase::Failed,
                Some("wf"),
                &["wf[1].b(0)"],
            ),
            node("wf[1].b(0)", "b(0)", "Pod", Phase::Failed, Some("wf"), &[]),
        ] {
            status.nodes.insert(n.id.clone(), n);
        }
        let out = workflow(&wf);
        let tree: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("STEP"))
            .skip(1)
            .map(|l| l.split("  t").next().unwrap().trim_end())
            .collect();
        assert_eq!(tree, [" ✖ wf", " ├─✔ a", " └─✖ b", "   └─✖ b(0)"], "{out}");
        assert!(out.contains(&pod_name("wf", "wf[1].b(0)", "t")), "{out}");
    }

    #[test]
    fn dag_tasks_sit_under_the_dag_and_items_under_their_task() {
        let mut wf = Workflow::default();
        wf.metadata.name = Some("d".into());
        let status = wf.status.get_or_insert_default();
        status.phase = Some(Phase::Running);
        for n in [
            node("d", "d", "DAG", Phase::Running, None, &["d.a"]),
            node(
                "d.a",
                "a",
                "Pod",
                Phase::Succeeded,
                Some("d"),
                &["d.b", "d.fan"],
            ),
            node("d.b", "b", "Pod", Phase::Running, Some("d"), &[]),
            node(
                "d.fan",
                "fan",
                "TaskGroup",
                Phase::Running,
                Some("d"),
                &["d.fan(0:x)", "d.fan(1:y)"],
            ),
            node(
                "d.fan(0:x)",
                "fan(0:x)",
                "Pod",
                Phase::Succeeded,
                Some("d"),
                &[],
            ),
            node(
                "d.fan(1:y)",
                "fan(1:y)",
                "Pod",
                Phase::Pending,
                Some("d"),
                &[],
            ),
        ] {
            status.nodes.insert(n.id.clone(), n);
        }
        let out = workflow(&wf);
        let tree: Vec<&str> = out
            .lines()
            .skip_while(|l| !l.starts_with("STEP"))
            .skip(1)
            .map(|l| l.split("  t").next().unwrap().trim_end())
            .collect();
        assert_eq!(
            tree,
            [
                " ● d",
                " ├─✔ a",
                " ├─● b",
                " └─● fan",
                "   ├─✔ fan(0:x)",
                "   └─◷ fan(1:y)"
            ],
            "{out}"
        );
        assert!(out.contains("Status:              Running\n"), "{out}");
    }
}
