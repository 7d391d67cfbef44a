//! The checks a workflow spec must pass before it runs, shared by the controller and `ferry wf lint`.

use std::collections::BTreeMap;

use ferry_types::workflow::{DagTask, Template, WorkflowSpec};

use crate::templates::{Holder, Library, target};
use crate::{duration, expr};

/// The entrypoint, or why the spec cannot run: every template a step or task names exists
/// (locally or through `templateRef` in `library`), the entrypoint's inputs are given, every
/// step gives the inputs its template requires, DAGs have no cycle or unknown dependency.
pub fn validate<'a>(spec: &'a WorkflowSpec, library: Library<'a>) -> Result<&'a str, String> {
    let entrypoint = spec
        .entrypoint
        .as_deref()
        .ok_or("spec.entrypoint is required")?;
    let Some(main) = library.get(&Holder::Local, entrypoint) else {
        return Err(format!(
            "spec.entrypoint: template {entrypoint:?} not found"
        ));
    };
    let arguments = spec.arguments.iter().flat_map(|a| &a.parameters);
    let given: Vec<&str> = arguments
        .filter(|p| p.value.is_some() || p.default.is_some())
        .map(|p| p.name.as_str())
        .collect();
    if let Some(missing) = required(main).find(|name| !given.contains(name)) {
        return Err(format!(
            "spec.arguments.parameters.{missing}: required by the entrypoint {entrypoint:?} and not supplied"
        ));
    }
    if let Some(exit) = spec.on_exit.as_deref()
        && library.get(&Holder::Local, exit).is_none()
    {
        return Err(format!("spec.onExit: template {exit:?} not found"));
    }
    crate::control::Shutdown::parse(spec.shutdown.as_deref())?;
    crate::claims::gc_strategy(spec).map_err(|message| format!("spec.{message}"))?;
    let mut holders = vec![Holder::Local];
    let mut index = 0;
    while let Some(holder) = holders.get(index).cloned() {
        index += 1;
        let prefix = match &holder {
            Holder::Local => String::from("templates"),
            other => format!("{}: templates", other.describe()),
        };
        for template in library.templates(&holder) {
            let at = format!("{prefix}.{}", template.name);
            check_template(template, &at)?;
            let steps = template.steps.iter().flatten().flatten().map(|s| {
                (
                    &s.name,
                    s.template.as_deref(),
                    s.template_ref.as_ref(),
                    s.arguments.as_ref(),
                )
            });
            let tasks = template.dag.iter().flat_map(|d| &d.tasks).map(|t| {
                (
                    &t.name,
                    t.template.as_deref(),
                    t.template_ref.as_ref(),
                    t.arguments.as_ref(),
                )
            });
            for (step, name, reference, arguments) in steps.chain(tasks) {
                let Some((to, name)) = target(&holder, name, reference) else {
                    return Err(format!("{at}.{step}: template is required"));
                };
                let Some(called) = library.get(&to, &name) else {
                    return Err(match reference {
                        Some(_) => format!(
                            "{at}.{step}.templateRef: template {name:?} not found in {}",
                            to.describe()
                        ),
                        None => format!("{at}.{step}: template {name:?} not found"),
                    });
                };
                let supplied = arguments.iter().flat_map(|a| &a.parameters);
                let supplied: Vec<&str> = supplied.map(|p| p.name.as_str()).collect();
                if let Some(missing) = required(called).find(|n| !supplied.contains(n)) {
                    return Err(format!(
                        "{at}.{step}: inputs.parameters.{missing} was not supplied"
                    ));
                }
                if !holders.contains(&to) {
                    holders.push(to);
                }
            }
            if let Some(dag) = &template.dag {
                topological_order(&dag.tasks).map_err(|message| format!("{at}: {message}"))?;
            }
        }
    }
    Ok(entrypoint)
}

/// The input parameters of `template` without a value or default.
fn required(template: &Template) -> impl Iterator<Item = &str> {
    let inputs = template.inputs.iter().flat_map(|i| &i.parameters);
    inputs
        .filter(|p| p.value.is_none() && p.default.is_none())
        .map(|p| p.name.as_str())
}

/// Checks of a template's own fields.
fn check_template(template: &Template, at: &str) -> Result<(), String> {
    if let Some(wait) = template
        .suspend
        .as_ref()
        .and_then(|s| s.duration.as_deref())
    {
        duration::parse(wait).map_err(|message| format!("{at}.suspend.duration: {message}"))?;
    }
    crate::operator::resource::validate(template).map_err(|message| format!("{at}.{message}"))?;
    crate::operator::http::validate(template).map_err(|message| format!("{at}.{message}"))?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn check(yaml: &str) -> Result<String, String> {
        let spec: WorkflowSpec = serde_yaml::from_str(yaml).unwrap();
        let stored = BTreeMap::new();
        validate(
            &spec,
            Library {
                local: &spec,
                stored: &stored,
            },
        )
        .map(Into::into)
    }

    #[test]
    fn each_mistake_is_named_by_its_field() {
        let ok = "entrypoint: main
templates:
- name: main
  steps: [[{name: a, template: echo, arguments: {parameters: [{name: msg, value: x}]}}]]
- name: echo
  inputs: {parameters: [{name: msg}]}
  container: {image: busybox}
";
        assert_eq!(check(ok).unwrap(), "main");
        let unknown = ok.replace("template: echo", "template: nowhere");
        assert_eq!(
            check(&unknown).unwrap_err(),
            "templates.main.a: template \"nowhere\" not found"
        );
        let unsupplied = ok.replace("{parameters: [{name: msg, value: x}]}", "{}");
        assert_eq!(
            check(&unsupplied).unwrap_err(),
            "templates.main.a: inputs.parameters.msg was not supplied"
        );
        let entry_input = "entrypoint: echo
templates: [{name: echo, inputs: {parameters: [{name: msg}]}, container: {image: busybox}}]
";
        assert_eq!(
            check(entry_input).unwrap_err(),
            "spec.arguments.parameters.msg: required by the entrypoint \"echo\" and not supplied"
        );
        let cycle = "entrypoint: main
templates:
- name: main
  dag: {tasks: [{name: a, template: c, dependencies: [b]}, {name: b, template: c, dependencies: [a]}]}
- {name: c, container: {image: busybox}}
";
        assert_eq!(
            check(cycle).unwrap_err(),
            "templates.main: dependency cycle through task \"a\""
        );
        let duration = "entrypoint: wait
templates: [{name: wait, suspend: {duration: soon}}]
";
        assert!(
            check(duration)
                .unwrap_err()
                .starts_with("templates.wait.suspend.duration: ")
        );
    }
}
