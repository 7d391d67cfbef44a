//! `dag` templates: tasks in dependency order, `depends` expressions, omitted branches.

use std::collections::{BTreeMap, BTreeSet};

use ferry_types::workflow::{Phase, Template};

use super::{Call, Op, add_node_scope};
use crate::expr::{self, Scope, TaskResult};
use crate::validate::{dependencies, topological_order};

impl Op<'_> {
    pub(super) fn execute_dag(&mut self, id: &str, call: &Call, template: &Template, scope: Scope) {
        self.mark(id, Phase::Running, None);
        let dag = template.dag.clone().unwrap_or_default();
        let order = topological_order(&dag.tasks).expect("validated: no cycle");
        let task_id = |op: &Self, task: &str| op.id(&format!("{}.{task}", call.name));
        for index in order {
            let task = &dag.tasks[index];
            let name = format!("{}.{}", call.name, task.name);
            let tid = self.id(&name);
            if self.phase(&tid).is_completed() {
                continue;
            }
            let deps = dependencies(task);
            let dep_ids: Vec<String> = deps.iter().map(|d| task_id(self, d)).collect();
            if !dep_ids.iter().all(|d| self.phase(d).is_completed()) {
                continue;
            }
            let mut ready = match &task.depends {
                Some(depends) => expr::evaluate_depends(depends, |dep| {
                    Some(self.task_result(&task_id(self, dep)))
                }),
                None => Ok(dep_ids
                    .iter()
                    .all(|d| matches!(self.phase(d), Phase::Succeeded | Phase::Skipped))),
            };
            if let Err(message) = &ready {
                self.error_call(&name, &task.name, id, message.clone());
                ready = Ok(false);
            }
            let mut task_scope = scope.clone();
            for dep in &dag.tasks {
                if let Some(node) = self.nodes.get(&task_id(self, &dep.name)) {
                    add_node_scope(&mut task_scope, &format!("tasks.{}", dep.name), node);
                }
            }
            let child = if ready == Ok(false) {
                if !self.nodes.contains_key(&tid) {
                    self.init_node(
                        &name,
                        &task.name,
                        "Skipped",
                        task.template.as_deref(),
                        Some(id),
                        Phase::Omitted,
                        Some("omitted: depends condition not met".into()),
                    );
                }
                tid.clone()
            } else {
                let fanned = task.with_items.is_some()
                    || task.with_param.is_some()
                    || task.with_sequence.is_some();
                let expanded = self.expand(
                    &name,
                    &task.name,
                    &task.with_items,
                    &task.with_param,
                    &task.with_sequence,
                    &task_scope,
                );
                let mut children = Vec::new();
                if fanned {
                    self.init_node(
                        &name,
                        &task.name,
                        "TaskGroup",
                        task.template.as_deref(),
                        Some(id),
                        Phase::Running,
                        None,
                    );
                }
                for (child_name, display, extra) in expanded {
                    let child = match extra {
                        Err(message) => self.error_call(&child_name, &display, id, message),
                        Ok(extra) => {
                            let mut item_scope = task_scope.clone();
                            item_scope.extend(extra);
                            self.execute_step(
                                &child_name,
                                &display,
                                &call.holder,
                                task.template.as_deref(),
                                task.template_ref.as_ref(),
                                task.when.as_deref(),
                                task.arguments.as_ref(),
                                id,
                                &item_scope,
                            )
                        }
                    };
                    children.push(child);
                }
                if fanned {
                    for child in &children {
                        self.add_child(&tid, child);
                    }
                    self.roll_up(&tid, &children);
                }
                tid.clone()
            };
            if dep_ids.is_empty() {
                self.add_child(id, &child);
            }
            for dep in &dep_ids {
                self.add_child(dep, &child);
            }
        }
        let all_done = dag
            .tasks
            .iter()
            .all(|t| self.phase(&task_id(self, &t.name)).is_completed());
        if !all_done {
            return;
        }
        let targets: Vec<String> = match &dag.target {
            Some(target) => target.split_whitespace().map(Into::into).collect(),
            None => {
                let depended: BTreeSet<String> = dag.tasks.iter().flat_map(dependencies).collect();
                dag.tasks
                    .iter()
                    .map(|t| t.name.clone())
                    .filter(|t| !depended.contains(t))
                    .collect()
            }
        };
        let tasks: BTreeMap<&str, Vec<String>> = dag
            .tasks
            .iter()
            .map(|t| (t.name.as_str(), dependencies(t)))
            .collect();
        for target in &targets {
            let phase = self.branch_phase(&call.name, target, &tasks);
            if phase.is_failed_or_error() {
                let failed = task_id(self, target);
                self.mark(id, Phase::Failed, Some(format!("child '{failed}' failed")));
                return;
            }
        }
        let mut scope = scope;
        for task in &dag.tasks {
            if let Some(node) = self.nodes.get(&task_id(self, &task.name)) {
                add_node_scope(&mut scope, &format!("tasks.{}", task.name), node);
            }
        }
        self.complete_with_outputs(id, template, &scope);
    }

    /// A task's phase for its DAG's: its own, or for an omitted task, the worst of the
    /// branches it hangs from (upstream: a failure's omitted descendants fail the DAG).
    pub(super) fn branch_phase(
        &self,
        dag: &str,
        task: &str,
        tasks: &BTreeMap<&str, Vec<String>>,
    ) -> Phase {
        let phase = self.phase(&self.id(&format!("{dag}.{task}")));
        if phase != Phase::Omitted {
            return phase;
        }
        let parents = tasks.get(task).cloned().unwrap_or_default();
        parents
            .iter()
            .map(|p| self.branch_phase(dag, p, tasks))
            .find(|p| p.is_failed_or_error())
            .unwrap_or(Phase::Succeeded)
    }

    pub(super) fn task_result(&self, id: &str) -> TaskResult {
        let phase = self.phase(id);
        let children: Vec<Phase> = self
            .nodes
            .get(id)
            .filter(|n| n.type_ == "TaskGroup")
            .map(|n| n.children.iter().map(|c| self.phase(c)).collect())
            .unwrap_or_default();
        TaskResult {
            succeeded: phase == Phase::Succeeded,
            failed: phase == Phase::Failed,
            errored: phase == Phase::Error,
            skipped: phase == Phase::Skipped,
            omitted: phase == Phase::Omitted,
            any_succeeded: children.contains(&Phase::Succeeded),
            all_failed: !children.is_empty() && children.iter().all(|p| *p == Phase::Failed),
        }
    }
}
