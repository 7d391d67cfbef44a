//! `ferry wf template create|list|get|delete|lint`: WorkflowTemplates, as `argo template`.

use std::process::ExitCode;

use ferry_types::WorkflowTemplate;

use super::stored::{self, Stored};
use crate::core::KubeArgs;

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    #[command(flatten)]
    Stored(stored::Command<WorkflowTemplate>),
    /// Validate files or directories of WorkflowTemplates offline.
    Lint {
        #[arg(required = true)]
        paths: Vec<String>,
    },
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Stored(command) => stored::run(kube, command).await?,
        Command::Lint { paths } => return stored::lint::<WorkflowTemplate>(&paths),
    }
    Ok(ExitCode::SUCCESS)
}

impl Stored for WorkflowTemplate {
    const KIND: &'static str = "WorkflowTemplate";
    const NOUN: &'static str = "workflow template";
    const LINTED: &'static [&'static str] = &["WorkflowTemplate", "ClusterWorkflowTemplate"];
    const COLUMNS: &'static [&'static str] = &["NAME"];

    fn row(&self) -> Vec<String> {
        vec![kube::ResourceExt::name_any(self)]
    }

    fn details(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}
