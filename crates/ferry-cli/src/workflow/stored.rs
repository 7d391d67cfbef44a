//! The verbs `ferry cron` and `ferry wf template` share over their kind: create (checked
//! first, as `lint` does), list, get, delete, lint.

use std::fmt::Debug;
use std::marker::PhantomData;
use std::process::ExitCode;

use anyhow::Context;
use k8s_openapi::NamespaceResourceScope;
use kube::ResourceExt;
use kube::api::{DeleteParams, ListParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::{Ns, Target, files, first_error, print_lint};
use crate::core::KubeArgs;
use crate::output::{ListFormat, ObjectFormat, Table, print_json, print_yaml, summary};

/// A kind the shared verbs manage.
pub trait Stored:
    kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Serialize
    + DeserializeOwned
    + Debug
{
    /// As files and messages name it, e.g. "CronWorkflow".
    const KIND: &'static str;
    /// As failures name it, e.g. "cron workflow".
    const NOUN: &'static str;
    /// The kinds `lint` reads.
    const LINTED: &'static [&'static str];
    /// The columns of `list -o wide`.
    const COLUMNS: &'static [&'static str];
    /// One row of `list -o wide`.
    fn row(&self) -> Vec<String>;
    /// The lines of `get -o wide` after Name, Namespace and Created.
    fn details(&self) -> Vec<(&'static str, String)>;
}

#[derive(clap::Subcommand)]
pub enum Command<K: Stored> {
    #[command(about = format!("Create {}s from files (each checked first, as `lint` does)", K::KIND))]
    Create {
        #[arg(required = true)]
        files: Vec<String>,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ObjectFormat,
        #[command(flatten)]
        ns: Ns,
    },
    #[command(about = format!("List {}s", K::KIND))]
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ListFormat,
        #[command(flatten)]
        ns: Ns,
    },
    #[command(about = format!("Show a {}", K::KIND))]
    Get {
        name: String,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: ObjectFormat,
        #[command(flatten)]
        ns: Ns,
    },
    #[command(about = format!("Delete {}s", K::KIND))]
    Delete {
        names: Vec<String>,
        #[arg(long, help = format!("Every {} of the namespace", K::KIND))]
        all: bool,
        #[command(flatten)]
        ns: Ns,
        /// Ties the verbs to their kind (no argument).
        #[arg(skip)]
        kind: PhantomData<K>,
    },
}

/// Runs one of the shared verbs.
pub async fn run<K: Stored>(kube: &KubeArgs, command: Command<K>) -> anyhow::Result<()> {
    match command {
        Command::Create { files, output, ns } => {
            let read = files::read(&files)?;
            let target = Target::connect(kube, &ns).await?;
            if let Some(error) = first_error(&target, only(read.clone(), &[K::KIND])).await? {
                anyhow::bail!("failed to create {}: {error}", K::NOUN);
            }
            for mut object in files::objects::<K>(&read, K::KIND)? {
                object.meta_mut().namespace = Some(target.namespace.clone());
                let created = target
                    .api::<K>()
                    .create(&PostParams::default(), &object)
                    .await
                    .with_context(|| format!("failed to create {}", K::NOUN))?;
                show(&created, output)?;
            }
        }
        Command::List { output, ns } => {
            let target = Target::connect(kube, &ns).await?;
            let list = target.api::<K>().list(&ListParams::default()).await?;
            match output {
                ListFormat::Json => print_json(&list.items)?,
                ListFormat::Yaml => print_yaml(&list.items)?,
                ListFormat::Name => list.items.iter().for_each(|o| println!("{}", o.name_any())),
                ListFormat::Wide => {
                    let mut table = Table::new(K::COLUMNS);
                    for object in &list.items {
                        table.row(object.row());
                    }
                    print!("{}", table.render());
                }
            }
        }
        Command::Get { name, output, ns } => {
            let target = Target::connect(kube, &ns).await?;
            show(&target.api::<K>().get(&name).await?, output)?;
        }
        Command::Delete { names, all, ns, .. } => {
            let target = Target::connect(kube, &ns).await?;
            let api = target.api::<K>();
            let mut names = names;
            if all {
                names.extend(
                    api.list(&ListParams::default())
                        .await?
                        .items
                        .iter()
                        .map(|o| o.name_any()),
                );
            }
            if names.is_empty() {
                anyhow::bail!("give {} names or --all", K::KIND);
            }
            for name in names {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .with_context(|| format!("deleting {} {name}", K::KIND))?;
                println!("{} '{name}' deleted", K::KIND);
            }
        }
    }
    Ok(())
}

/// `lint`: the files' documents of the linted kinds, checked offline.
pub fn lint<K: Stored>(paths: &[String]) -> anyhow::Result<ExitCode> {
    Ok(print_lint(&only(files::read(paths)?, K::LINTED)))
}

/// Only the documents of `kinds`.
fn only(files: Vec<(String, Vec<Value>)>, kinds: &[&str]) -> Vec<(String, Vec<Value>)> {
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

fn show<K: Stored>(object: &K, format: ObjectFormat) -> anyhow::Result<()> {
    match format {
        ObjectFormat::Json => print_json(object),
        ObjectFormat::Yaml => print_yaml(object),
        ObjectFormat::Wide => {
            let created = object.meta().creation_timestamp.as_ref();
            let mut fields = vec![
                ("Name", object.name_any()),
                ("Namespace", object.namespace().unwrap_or_default()),
                (
                    "Created",
                    created.map(|t| t.0.to_string()).unwrap_or_default(),
                ),
            ];
            fields.extend(object.details());
            print!("{}", summary(&fields));
            Ok(())
        }
    }
}
