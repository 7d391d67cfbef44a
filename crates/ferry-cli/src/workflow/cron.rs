//! `ferry cron create|list|get|delete|suspend|resume|lint`: CronWorkflows, as `argo cron`.

use std::process::ExitCode;

use anyhow::Context;
use ferry_types::CronWorkflow;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use super::stored::{self, Stored};
use super::{Ns, Target};
use crate::core::KubeArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Stored(stored::Command<CronWorkflow>),
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
        Command::Stored(command) => stored::run(kube, command).await?,
        Command::Suspend { names, ns } => set_suspend(kube, &ns, &names, true).await?,
        Command::Resume { names, ns } => set_suspend(kube, &ns, &names, false).await?,
        Command::Lint { paths } => return stored::lint::<CronWorkflow>(&paths),
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

impl Stored for CronWorkflow {
    const KIND: &'static str = "CronWorkflow";
    const NOUN: &'static str = "cron workflow";
    const LINTED: &'static [&'static str] = &["CronWorkflow"];
    const COLUMNS: &'static [&'static str] =
        &["NAME", "LAST RUN", "SCHEDULE", "TIMEZONE", "SUSPENDED"];

    fn row(&self) -> Vec<String> {
        vec![
            self.name_any(),
            last_run(self),
            schedules(self),
            self.spec.timezone.clone().unwrap_or_default(),
            (self.spec.suspend == Some(true)).to_string(),
        ]
    }

    fn details(&self) -> Vec<(&'static str, String)> {
        let active = self
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
        vec![
            ("Schedule", schedules(self)),
            ("Suspended", (self.spec.suspend == Some(true)).to_string()),
            (
                "ConcurrencyPolicy",
                self.spec
                    .concurrency_policy
                    .clone()
                    .unwrap_or_else(|| "Allow".into()),
            ),
            ("LastScheduledTime", last_run(self)),
            ("Active Workflows", active),
        ]
    }
}
