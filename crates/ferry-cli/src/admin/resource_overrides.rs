//! `ferry admin resource-overrides`: the resource actions an object offers and what running one
//! does, locally on an object file, as `argocd admin settings resource-overrides list-actions`
//! and `run-action` do: with argocd-cm's Lua actions (from `--argocd-cm-path`, else the
//! cluster's ConfigMap) and ferry's built-in ones. Nothing is sent to the cluster.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use ferry_health::{Impact, ResourceActions};
use serde_json::Value;
use similar::TextDiff;

use crate::core::{Core, KubeArgs};
use crate::health::read_object;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// List the actions an object offers: NAME and DISABLED.
    ListActions(ListArgs),
    /// Run an action on an object and print what it changes (a diff of the object) or creates.
    #[command(alias = "action")]
    RunAction(RunArgs),
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// The object (YAML or JSON; `-` reads stdin).
    object: PathBuf,
    /// An argocd-cm ConfigMap manifest to read the actions from instead of the cluster's.
    #[arg(long, value_name = "FILE")]
    argocd_cm_path: Option<PathBuf>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// The object (YAML or JSON; `-` reads stdin).
    object: PathBuf,
    /// The action's name.
    action: String,
    /// An action parameter, `name=value` (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
    /// An argocd-cm ConfigMap manifest to read the actions from instead of the cluster's.
    #[arg(long, value_name = "FILE")]
    argocd_cm_path: Option<PathBuf>,
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::ListActions(args) => {
            let object = read_object(&args.object)?;
            let actions = actions(kube, args.argocd_cm_path.as_deref()).await?;
            let mut listed = actions.discover(&object)?;
            listed.sort_by(|a, b| a.name.cmp(&b.name));
            let width = listed
                .iter()
                .map(|a| a.name.len())
                .max()
                .unwrap_or(0)
                .max(4);
            println!("{:width$}  DISABLED", "NAME");
            for action in listed {
                println!("{:width$}  {}", action.name, action.disabled);
            }
        }
        Command::RunAction(args) => {
            let params = args
                .params
                .iter()
                .map(|param| match param.split_once('=') {
                    Some((name, value)) => Ok((name.to_owned(), value.to_owned())),
                    None => bail!("invalid parameter {param:?}: expected name=value"),
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let object = read_object(&args.object)?;
            let actions = actions(kube, args.argocd_cm_path.as_deref()).await?;
            for impact in actions.run(&object, &args.action, &params)? {
                match impact {
                    Impact::Patch(changed) if changed == object => {
                        println!("No fields had been changed by action {:?}", args.action);
                    }
                    Impact::Patch(changed) => {
                        println!("Following fields have been changed:\n");
                        print!("{}", diff(&object, &changed)?);
                    }
                    Impact::Create(created) => {
                        println!("Following resource was created:");
                        print!("{}", serde_yaml::to_string(&created)?);
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The built-in actions and argocd-cm's Lua ones.
async fn actions(kube: &KubeArgs, argocd_cm: Option<&Path>) -> anyhow::Result<ResourceActions> {
    let (data, source) = match argocd_cm {
        Some(path) => (file_data(path)?, path.display().to_string()),
        None => {
            let core = Core::connect(kube).await?;
            let source = format!("ConfigMap {}/argocd-cm", core.namespace);
            (core.argocd_cm_data().await?, source)
        }
    };
    ResourceActions::from_argocd_cm(data).with_context(|| source)
}

fn file_data(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let config = read_object(path)?;
    let Some(data) = config.get("data").and_then(Value::as_object) else {
        bail!("{}: expected a ConfigMap with a data map", path.display());
    };
    data.iter()
        .map(|(key, value)| match value.as_str() {
            Some(value) => Ok((key.clone(), value.to_owned())),
            None => bail!("{}: data key {key:?} is not a string", path.display()),
        })
        .collect()
}

/// A unified diff of the object's YAML before and after.
fn diff(before: &Value, after: &Value) -> anyhow::Result<String> {
    let (old, new) = (
        serde_yaml::to_string(before)?,
        serde_yaml::to_string(after)?,
    );
    Ok(TextDiff::from_lines(&old, &new)
        .unified_diff()
        .context_radius(3)
        .header("before", "after")
        .to_string())
}
