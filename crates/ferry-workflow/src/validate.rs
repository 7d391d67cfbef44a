//! The checks a workflow spec must pass before it runs, shared by the controller and `ferry wf lint`.

use std::collections::BTreeMap;

use ferry_types::workflow::{DagTask, Workflow};

use crate::expr;

/// The entrypoint, or why the spec cannot run: every template a step or task names exists.
pub fn validate(workflow: &Workflow) -> Result<&str, String> {
    let spec = &workflow.spec;
    let known = |name: &str| workflow.template(name).is_some();
    let entrypoint = spec
        .entrypoint
        .as_deref()
        .ok_or("spec.entrypoint is required")?;
    if !known(entrypoint) {
        return Err(format!(
            "spec.entrypoint: template {entrypoint:?} not found"
        ));
    }
    if let Some(exit) = spec.on_exit.as_deref().filter(|e| !known(e)) {
        return Err(format!("spec.onExit: template {exit:?} not found"));
    }
    crate::control::Shutdown::parse(spec.shutdown.as_deref())?;
    for template in &spec.templates {
        let steps = template
            .steps
            .iter()
            .flatten()
            .flatten()
            .map(|s| (&s.name, &s.template));
        let tasks = template
            .dag
            .iter()
            .flat_map(|d| &d.tasks)
            .map(|t| (&t.name, &t.template));
        for (step, target) in steps.chain(tasks) {
            match target.as_deref() {
                Some(target) if known(target) => {}
                Some(target) => {
                    return Err(format!(
                        "templates.{}.{step}: template {target:?} not found",
                        template.name
                    ));
                }
                None => {
                    return Err(format!(
                        "templates.{}.{step}: template is required",
                        template.name
                    ));
                }
            }
        }
        if let Some(dag) = &template.dag {
            topological_order(&dag.tasks)
                .map_err(|message| format!("templates.{}: {message}", template.name))?;
        }
    }
    Ok(entrypoint)
}

/// The tasks a task waits for: those its `depends` names, else its `dependencies`.
pub(crate) fn dependencies(task: &DagTask) -> Vec<String> {
    match &task.depends {
        Some(depends) => expr::depends_names(depends),
        None => task.dependencies.clone(),
    }
}

/// Task indexes with every task after those it depends on; an unknown dependency or a cycle
/// is an error naming it.
pub(crate) fn topological_order(tasks: &[DagTask]) -> Result<Vec<usize>, String> {
    let index: BTreeMap<&str, usize> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.as_str(), i))
        .collect();
    let mut deps = Vec::new();
    for task in tasks {
        let mut mine = Vec::new();
        for dep in dependencies(task) {
            let Some(&i) = index.get(dep.as_str()) else {
                return Err(format!(
                    "task {:?} depends on unknown task {dep:?}",
                    task.name
                ));
            };
            mine.push(i);
        }
        deps.push(mine);
    }
    // 0 unvisited, 1 on the current path, 2 done.
    let mut state = vec![0u8; tasks.len()];
    let mut order = Vec::new();
    fn visit(
        i: usize,
        deps: &[Vec<usize>],
        state: &mut [u8],
        order: &mut Vec<usize>,
        tasks: &[DagTask],
    ) -> Result<(), String> {
        match state[i] {
            2 => return Ok(()),
            1 => return Err(format!("dependency cycle through task {:?}", tasks[i].name)),
            _ => {}
        }
        state[i] = 1;
        for &d in &deps[i] {
            visit(d, deps, state, order, tasks)?;
        }
        state[i] = 2;
        order.push(i);
        Ok(())
    }
    for i in 0..tasks.len() {
        visit(i, &deps, &mut state, &mut order, tasks)?;
    }
    Ok(order)
}
