//! `ferry wf template create|list|get|delete|lint`: WorkflowTemplates, as `argo template`.

use std::process::ExitCode;

use anyhow::Context;
use ferry_types::WorkflowTemplate;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde_json::Value;

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
    /// Create WorkflowTemplates from files (each checked first, as `lint` does).
    Create {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ObjectFormat,
        #[command(flatten)]
        ns: Ns,
    },
    /// List WorkflowTemplates.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ListFormat,
        #[command(flatten)]
        ns: Ns,
    },
    /// Show a WorkflowTemplate.
    Get {
        name: String,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ObjectFormat,
        #[command(flatten)]
        ns: Ns,
    },
    /// Delete WorkflowTemplates.
    Delete {
        names: Vec<String>,
        /// Every WorkflowTemplate of the namespace.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        ns: Ns,
    },
    /// Validate files or directories of WorkflowTemplates offline.
    Lint {
        #[arg(required = true)]
        paths: Vec<String>,
    },
}

/// Only the documents of `kinds`.
pub fn only(files: Vec<(String, Vec<Value>)>, kinds: &[&str]) -> Vec<(String, Vec<Value>)> {
    files
        .into_iter()
        .map(|(file, docs)| {
            let docs = docs
                .into_iter()
                .filter(|d| kinds.contains(&d.get("kind").and_then(Value::as_str).unwrap_or("")))
                .collect();
            (file, docs)
        })
        .collect()
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Create { files, output, ns } => {
            let read = files::read(&files)?;
            let target = Target::connect(kube, &ns).await?;
            if let Some(error) =
                first_error(&target, only(read.clone(), &["WorkflowTemplate"])).await?
            {
                anyhow::bail!("failed to create workflow template: {error}");
            }
            for mut template in files::objects::<WorkflowTemplate>(&read, "WorkflowTemplate")? {
                template.metadata.namespace = Some(target.namespace.clone());
                let created = target
                    .api::<WorkflowTemplate>()
                    .create(&PostParams::default(), &template)
                    .await
                    .context("failed to create workflow template")?;
                show(&created, output)?;
            }
        }
        Command::List { output, ns } => {
            let target = Target::connect(kube, &ns).await?;
            let list = target
                .api::<WorkflowTemplate>()
                .list(&ListParams::default())
                .await?;
            match output {
                ListFormat::Json => print_json(&list.items)?,
                ListFormat::Yaml => print_yaml(&list.items)?,
                ListFormat::Name => list.items.iter().for_each(|t| println!("{}", t.name_any())),
                ListFormat::Wide => {
                    let mut table = Table::new(&["NAME"]);
                    for template in &list.items {
                        table.row(vec![template.name_any()]);
                    }
                    print!("{}", table.render());
                }
            }
        }
        Command::Get { name, output, ns } => {
            let target = Target::connect(kube, &ns).await?;
            show(&target.api::<WorkflowTemplate>().get(&name).await?, output)?;
        }
        Command::Delete { names, all, ns } => {
            let target = Target::connect(kube, &ns).await?;
            let api = target.api::<WorkflowTemplate>();
            let mut names = names;
            if all {
                names.extend(
                    api.list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .map(|t| t.name_any()),
                );
            }
            if names.is_empty() {
                anyhow::bail!("give WorkflowTemplate names or --all");
            }
            for name in names {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .with_context(|| format!("deleting WorkflowTemplate {name}"))?;
                println!("WorkflowTemplate '{name}' deleted");
            }
        }
        Command::Lint { paths } => {
            let read = only(
                files::read(&paths)?,
                &["WorkflowTemplate", "ClusterWorkflowTemplate"],
            );
            return Ok(print_lint(&read));
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn show(template: &WorkflowTemplate, format: ObjectFormat) -> anyhow::Result<()> {
    match format {
        ObjectFormat::Json => print_json(template),
        ObjectFormat::Yaml => print_yaml(template),
        ObjectFormat::Wide => {
            let created = template.metadata.creation_timestamp.as_ref();
            print!(
                "{}",
                summary(&[
                    ("Name", template.name_any()),
                    ("Namespace", template.namespace().unwrap_or_default()),
                    (
                        "Created",
                        created.map(|t| t.0.to_string()).unwrap_or_default()
                    ),
                ])
            );
            Ok(())
        }
    }
}
