//! `ferry cron create|list|get|delete|suspend|resume|lint`: CronWorkflows, as `argo cron`.

use std::process::ExitCode;

use anyhow::Context;
use ferry_types::CronWorkflow;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use super::template::only;
use super::{Ns, Target, files, first_error, print_lint};
use crate::core::KubeArgs;
use crate::output::{ListFormat, ObjectFormat, Table, print_json, print_yaml, summary};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Create CronWorkflows from files (each checked first, as `lint` does).
    Create {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ObjectFormat,
        #[command(flatten)]
        ns: Ns,
    },
    /// List CronWorkflows.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ListFormat,
        #[command(flatten)]
        ns: Ns,
    },
    /// Show a CronWorkflow.
    Get {
        name: String,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ObjectFormat,
        #[command(flatten)]
        ns: Ns,
    },
    /// Delete CronWorkflows.
    Delete {
        names: Vec<String>,
        /// Every CronWorkflow of the namespace.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        ns: Ns,
    },
    /// Stop scheduling runs.
    Suspend {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        ns: Ns,
    },
    /// Schedule runs again.
    Resume {
        #[arg(required = true)]
        names: Vec<String>,
        #[command(flatten)]
        ns: Ns,
    },
    /// Validate files or directories of CronWorkflows offline.
    Lint {
        #[arg(required = true)]
        paths: Vec<String>,
    },
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Create { files, output, ns } => {
            let read = files::read(&files)?;
            let target = Target::connect(kube, &ns).await?;
            if let Some(error) = first_error(&target, only(read.clone(), &["CronWorkflow"])).await?
            {
                anyhow::bail!("failed to create cron workflow: {error}");
            }
            for mut cron in files::objects::<CronWorkflow>(&read, "CronWorkflow")? {
                cron.metadata.namespace = Some(target.namespace.clone());
                let created = target
                    .api::<CronWorkflow>()
                    .create(&PostParams::default(), &cron)
                    .await
                    .context("failed to create cron workflow")?;
                show(&created, output)?;
            }
        }
        Command::List { output, ns } => {
            let target = Target::connect(kube, &ns).await?;
            let list = target
                .api::<CronWorkflow>()
                .list(&ListParams::default())
                .await?;
            match output {
                ListFormat::Json => print_json(&list.items)?,
                ListFormat::Yaml => print_yaml(&list.items)?,
                ListFormat::Name => list.items.iter().for_each(|c| println!("{}", c.name_any())),
                ListFormat::Wide => {
                    let mut table =
                        Table::new(&["NAME", "LAST RUN", "SCHEDULE", "TIMEZONE", "SUSPENDED"]);
                    for cron in &list.items {
                        table.row(vec![
                            cron.name_any(),
                            last_run(cron),
                            schedules(cron),
                            cron.spec.timezone.clone().unwrap_or_default(),
                            (cron.spec.suspend == Some(true)).to_string(),
                        ]);
                    }
                    print!("{}", table.render());
                }
            }
        }
        Command::Get { name, output, ns } => {
            let target = Target::connect(kube, &ns).await?;
            show(&target.api::<CronWorkflow>().get(&name).await?, output)?;
        }
        Command::Delete { names, all, ns } => {
            let target = Target::connect(kube, &ns).await?;
            let api = target.api::<CronWorkflow>();
            let mut names = names;
            if all {
                names.extend(
                    api.list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .map(|c| c.name_any()),
                );
            }
            if names.is_empty() {
                anyhow::bail!("give CronWorkflow names or --all");
            }
            for name in names {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .with_context(|| format!("deleting CronWorkflow {name}"))?;
                println!("CronWorkflow '{name}' deleted");
            }
        }
        Command::Suspend { names, ns } => set_suspend(kube, &ns, &names, true).await?,
        Command::Resume { names, ns } => set_suspend(kube, &ns, &names, false).await?,
        Command::Lint { paths } => {
            return Ok(print_lint(&only(files::read(&paths)?, &["CronWorkflow"])));
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn set_suspend(
    kube: &KubeArgs,
    ns: &Ns,
    names: &[String],
    suspend: bool,
) -> anyhow::Result<()> {
    let target = Target::connect(kube, ns).await?;
    let api = target.api::<CronWorkflow>();
    let patch = Patch::Merge(json!({"spec": {"suspend": suspend}}));
    for name in names {
        api.patch(name, &PatchParams::default(), &patch)
            .await
            .with_context(|| format!("updating CronWorkflow {name}"))?;
        let done = if suspend { "suspended" } else { "resumed" };
        println!("CronWorkflow '{name}' {done}");
    }
    Ok(())
}

fn schedules(cron: &CronWorkflow) -> String {
    let all: Vec<&str> = cron
        .spec
        .schedule
        .iter()
        .chain(&cron.spec.schedules)
        .map(String::as_str)
        .collect();
    all.join(",")
}

fn last_run(cron: &CronWorkflow) -> String {
    cron.status
        .as_ref()
        .and_then(|s| s.get("lastScheduledTime"))
        .and_then(|t| t.as_str())
        .unwrap_or("N/A")
        .to_string()
}

fn show(cron: &CronWorkflow, format: ObjectFormat) -> anyhow::Result<()> {
    match format {
        ObjectFormat::Json => print_json(cron),
        ObjectFormat::Yaml => print_yaml(cron),
        ObjectFormat::Wide => {
            let created = cron.metadata.creation_timestamp.as_ref();
            let active = cron
                .status
                .as_ref()
                .and_then(|s| s.get("active"))
                .and_then(|a| a.as_array())
                .map(|a| {
                    a.iter()
                        .filter_map(|r| r.get("name").and_then(|n| n.as_str()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            print!(
                "{}",
                summary(&[
                    ("Name", cron.name_any()),
                    ("Namespace", cron.namespace().unwrap_or_default()),
                    (
                        "Created",
                        created.map(|t| t.0.to_string()).unwrap_or_default()
                    ),
                    ("Schedule", schedules(cron)),
                    ("Suspended", (cron.spec.suspend == Some(true)).to_string()),
                    (
                        "ConcurrencyPolicy",
                        cron.spec
                            .concurrency_policy
                            .clone()
                            .unwrap_or_else(|| "Allow".into())
                    ),
                    ("LastScheduledTime", last_run(cron)),
                    ("Active Workflows", active),
                ])
            );
            Ok(())
        }
    }
}
