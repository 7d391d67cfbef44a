//! `ferry proj`: AppProjects in the control namespace (core mode) or through a server's
//! `/api/v1/projects`, with argocd's flags and output.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Subcommand;
use ferry_types::AppProject;
use ferry_types::application::ApplicationDestination;
use ferry_types::project::{
    ClusterResourceRestrictionItem, GroupKind, OrphanedResourcesMonitorSettings,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{DeleteParams, PostParams};
use reqwest::Method;
use serde_json::{Value, json};

use crate::core::{Core, KubeArgs, is_not_found, update};
use crate::output::{ListFormat, ObjectFormat, Table, or_none, print_json, print_yaml, summary};
use crate::server::Mode;
use crate::server::apps::items;
use crate::server::client::{ApiClient, segment};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a project (from flags, a manifest, or both).
    Create(Box<CreateArgs>),
    /// List projects.
    List(ListArgs),
    /// Show a project.
    Get(GetArgs),
    /// Delete a project.
    Delete(DeleteArgs),
    /// Manage a project's roles.
    Role(RoleArgs),
}

#[derive(clap::Args, Debug)]
struct DeleteArgs {
    name: String,
}

#[derive(clap::Args, Debug)]
struct RoleArgs {
    #[command(subcommand)]
    command: RoleCommand,
}

#[derive(Subcommand, Debug)]
enum RoleCommand {
    /// Issue a token for a project role and print it (through a server).
    CreateToken(CreateTokenArgs),
}

#[derive(clap::Args, Debug)]
struct CreateTokenArgs {
    project: String,
    role: String,
    /// Lifetime in seconds (default: never expires).
    #[arg(long, short = 'e', default_value_t = 0, value_name = "SECONDS")]
    expires_in: u64,
    /// The token's ID (default: generated).
    #[arg(long, short = 'i')]
    id: Option<String>,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Project name (optional with --file).
    name: Option<String>,
    /// An AppProject manifest to start from; flags add to it.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    #[arg(long)]
    description: Option<String>,
    /// Permitted source repository URL (glob; repeatable).
    #[arg(long = "src", short = 's', value_name = "REPO")]
    sources: Vec<String>,
    /// Permitted destination `SERVER,NAMESPACE`; a SERVER that is not a URL is a cluster name
    /// (repeatable).
    #[arg(long = "dest", short = 'd', value_name = "SERVER,NAMESPACE")]
    destinations: Vec<String>,
    /// Cluster-scoped kind that may be deployed (repeatable).
    #[arg(long = "allow-cluster-resource", value_name = "GROUP/KIND")]
    allow_cluster: Vec<String>,
    /// Cluster-scoped kind that may not be deployed (repeatable).
    #[arg(long = "deny-cluster-resource", value_name = "GROUP/KIND")]
    deny_cluster: Vec<String>,
    /// Namespaced kind that may be deployed; once given, only listed kinds are (repeatable).
    #[arg(long = "allow-namespaced-resource", value_name = "GROUP/KIND")]
    allow_namespaced: Vec<String>,
    /// Namespaced kind that may not be deployed (repeatable).
    #[arg(long = "deny-namespaced-resource", value_name = "GROUP/KIND")]
    deny_namespaced: Vec<String>,
    /// Report resources in the destination namespaces that no app manages.
    #[arg(long)]
    orphaned_resources: bool,
    /// With --orphaned-resources: also give apps a warning condition for them.
    #[arg(long, requires = "orphaned_resources")]
    orphaned_resources_warn: bool,
    /// Update the project if it exists with a different spec.
    #[arg(long)]
    upsert: bool,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args, Debug)]
struct GetArgs {
    name: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
}

pub async fn run(kube: &KubeArgs, mode: Mode, args: Args) -> anyhow::Result<ExitCode> {
    if let Mode::Server(session) = mode {
        return run_server(&session.api, args).await;
    }
    let core = Core::connect(kube).await?;
    match args.command {
        Command::Create(args) => create(&core, *args).await,
        Command::List(args) => list(&core, args.output).await,
        Command::Get(args) => get(&core, args).await,
        Command::Delete(args) => {
            core.projects()
                .delete(&args.name, &DeleteParams::default())
                .await
                .with_context(|| format!("deleting project {}", args.name))?;
            println!("project '{}' deleted", args.name);
            Ok(ExitCode::SUCCESS)
        }
        Command::Role(_) => {
            bail!("project role tokens are signed by the server: log in with `ferry login` first")
        }
    }
}

async fn run_server(api: &ApiClient, args: Args) -> anyhow::Result<ExitCode> {
    let project_path = |name: &str| format!("/api/v1/projects/{}", segment(name));
    match args.command {
        Command::Create(args) => {
            let project = build(&args, None)?;
            let name = project.metadata.name.clone().unwrap_or_default();
            let body = json!({"project": project, "upsert": args.upsert});
            api.call::<Value>(Method::POST, "/api/v1/projects", &[], Some(&body))
                .await
                .with_context(|| format!("creating project {name}"))?;
            println!("project '{name}' created");
        }
        Command::List(args) => {
            let projects: Vec<AppProject> = items(api.get("/api/v1/projects", &[]).await?)?;
            print_projects(&projects, args.output)?;
        }
        Command::Get(args) => {
            let project: AppProject = api
                .get(&project_path(&args.name), &[])
                .await
                .with_context(|| format!("reading project {}", args.name))?;
            print_project(&project, args.output)?;
        }
        Command::Delete(args) => {
            api.call::<Value>(
                Method::DELETE,
                &project_path(&args.name),
                &[],
                None::<&Value>,
            )
            .await
            .with_context(|| format!("deleting project {}", args.name))?;
            println!("project '{}' deleted", args.name);
        }
        Command::Role(RoleArgs {
            command: RoleCommand::CreateToken(args),
        }) => {
            let path = format!(
                "{}/roles/{}/token",
                project_path(&args.project),
                segment(&args.role)
            );
            let mut body = json!({"expiresIn": args.expires_in});
            if let Some(id) = &args.id {
                body["id"] = id.clone().into();
            }
            let answer: Value = api
                .call(Method::POST, &path, &[], Some(&body))
                .await
                .with_context(|| {
                    format!(
                        "creating a token for role {} of project {}",
                        args.role, args.project
                    )
                })?;
            let token = answer["token"]
                .as_str()
                .context("the server answered without a token")?;
            println!("{token}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

impl CreateArgs {
    /// Adds the flags' entries to the project.
    fn apply(&self, project: &mut AppProject) -> anyhow::Result<()> {
        let spec = &mut project.spec;
        if let Some(description) = &self.description {
            spec.description = description.clone();
        }
        push_new(&mut spec.source_repos, self.sources.iter().cloned());
        let destinations = self
            .destinations
            .iter()
            .map(|d| parse_destination(d))
            .collect::<anyhow::Result<Vec<_>>>()?;
        push_new(&mut spec.destinations, destinations);
        let cluster_items =
            |list: &[String], flag: &str| -> anyhow::Result<Vec<ClusterResourceRestrictionItem>> {
                list.iter()
                    .map(|gk| {
                        let (group, kind) = parse_group_kind(gk, flag)?;
                        Ok(ClusterResourceRestrictionItem {
                            group,
                            kind,
                            ..Default::default()
                        })
                    })
                    .collect()
            };
        let group_kinds = |list: &[String], flag: &str| -> anyhow::Result<Vec<GroupKind>> {
            list.iter()
                .map(|gk| {
                    let (group, kind) = parse_group_kind(gk, flag)?;
                    Ok(GroupKind {
                        group,
                        kind,
                        ..Default::default()
                    })
                })
                .collect()
        };
        push_new(
            &mut spec.cluster_resource_whitelist,
            cluster_items(&self.allow_cluster, "--allow-cluster-resource")?,
        );
        push_new(
            &mut spec.cluster_resource_blacklist,
            cluster_items(&self.deny_cluster, "--deny-cluster-resource")?,
        );
        if !self.allow_namespaced.is_empty() {
            push_new(
                spec.namespace_resource_whitelist.get_or_insert_default(),
                group_kinds(&self.allow_namespaced, "--allow-namespaced-resource")?,
            );
        }
        push_new(
            &mut spec.namespace_resource_blacklist,
            group_kinds(&self.deny_namespaced, "--deny-namespaced-resource")?,
        );
        if self.orphaned_resources {
            spec.orphaned_resources = Some(OrphanedResourcesMonitorSettings {
                warn: Some(self.orphaned_resources_warn),
                ..Default::default()
            });
        }
        Ok(())
    }
}

/// Appends the entries not already there.
fn push_new<T: PartialEq>(list: &mut Vec<T>, entries: impl IntoIterator<Item = T>) {
    for entry in entries {
        if !list.contains(&entry) {
            list.push(entry);
        }
    }
}

/// `SERVER,NAMESPACE`; as in argocd, a first part that is not a URL names a cluster.
fn parse_destination(text: &str) -> anyhow::Result<ApplicationDestination> {
    let Some((cluster, namespace)) = text.split_once(',').filter(|(_, ns)| !ns.contains(','))
    else {
        bail!("--dest {text:?}: expected SERVER,NAMESPACE");
    };
    let mut dest = ApplicationDestination {
        namespace: namespace.to_string(),
        ..Default::default()
    };
    if cluster.contains("://") {
        dest.server = cluster.to_string();
    } else {
        dest.name = cluster.to_string();
    }
    Ok(dest)
}

/// `GROUP/KIND`, or `KIND` alone for the core group.
fn parse_group_kind(text: &str, flag: &str) -> anyhow::Result<(String, String)> {
    let (group, kind) = text.rsplit_once('/').unwrap_or(("", text));
    if kind.is_empty() || group.contains('/') {
        bail!("{flag} {text:?}: expected GROUP/KIND");
    }
    Ok((group.to_string(), kind.to_string()))
}

/// The project the flags (and `--file`) describe, in `namespace` when given.
fn build(args: &CreateArgs, namespace: Option<&str>) -> anyhow::Result<AppProject> {
    let mut project = match &args.file {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            serde_yaml::from_str(&text)
                .with_context(|| format!("{}: not an AppProject", file.display()))?
        }
        None => AppProject::default(),
    };
    let name = match (&args.name, &project.metadata.name) {
        (Some(given), Some(in_file)) if given != in_file => {
            bail!("project name {given:?} does not match metadata.name {in_file:?} in the manifest")
        }
        (Some(name), _) | (None, Some(name)) => name.clone(),
        (None, None) => bail!("a project name is needed (NAME, or metadata.name in --file)"),
    };
    project.metadata = ObjectMeta {
        name: Some(name),
        namespace: namespace.map(str::to_string),
        labels: project.metadata.labels.take(),
        annotations: project.metadata.annotations.take(),
        ..Default::default()
    };
    project.status = None;
    args.apply(&mut project)?;
    project.policy()?;
    Ok(project)
}

async fn create(core: &Core, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let project = build(&args, Some(&core.namespace))?;
    let name = project.metadata.name.clone().unwrap_or_default();
    core.prepare().await?;

    let projects = core.projects();
    if projects.get_opt(&name).await?.is_none() {
        projects
            .create(&PostParams::default(), &project)
            .await
            .with_context(|| format!("creating project {name}"))?;
        println!("project '{name}' created");
        return Ok(ExitCode::SUCCESS);
    }
    let (_, changed) = update(&projects, "project", &name, |existing| {
        let same = existing.spec == project.spec
            && existing.metadata.labels == project.metadata.labels
            && existing.metadata.annotations == project.metadata.annotations;
        if !same && !args.upsert {
            bail!("project {name} exists with a different spec; use --upsert to replace it");
        }
        existing.spec = project.spec.clone();
        existing.metadata.labels = project.metadata.labels.clone();
        existing.metadata.annotations = project.metadata.annotations.clone();
        Ok(())
    })
    .await?;
    println!(
        "project '{name}' {}",
        if changed { "updated" } else { "unchanged" }
    );
    Ok(ExitCode::SUCCESS)
}

async fn list(core: &Core, output: ListFormat) -> anyhow::Result<ExitCode> {
    let projects = match core.projects().list(&Default::default()).await {
        Ok(list) => list.items,
        Err(err) => {
            let err = anyhow::Error::from(err);
            if is_not_found(&err) {
                bail!(
                    "the AppProject CRD is not installed in this cluster (`ferry proj create` installs it)"
                );
            }
            return Err(err).with_context(|| format!("listing projects in {}", core.namespace));
        }
    };
    print_projects(&projects, output)
}

fn print_projects(projects: &[AppProject], output: ListFormat) -> anyhow::Result<ExitCode> {
    match output {
        ListFormat::Json => print_json(&projects)?,
        ListFormat::Yaml => print_yaml(&projects)?,
        ListFormat::Name => {
            for project in projects {
                println!("{}", project.metadata.name.as_deref().unwrap_or_default());
            }
        }
        ListFormat::Wide => print!("{}", project_table(projects).render()),
    }
    Ok(ExitCode::SUCCESS)
}

fn project_table(projects: &[AppProject]) -> Table {
    let mut table = Table::new(&[
        "NAME",
        "DESCRIPTION",
        "DESTINATIONS",
        "SOURCES",
        "CLUSTER-RESOURCE-WHITELIST",
        "NAMESPACE-RESOURCE-BLACKLIST",
        "SIGNATURE-KEYS",
        "ORPHANED-RESOURCES",
    ]);
    for project in projects {
        let spec = &project.spec;
        table.row(vec![
            project.metadata.name.clone().unwrap_or_default(),
            spec.description.clone(),
            count_or_one(&spec.destinations, "destinations", destination_text),
            count_or_one(&spec.source_repos, "repos", String::clone),
            count_or_one(&spec.cluster_resource_whitelist, "resources", |r| {
                format!("{}/{}", r.group, r.kind)
            }),
            count_or_one(&spec.namespace_resource_blacklist, "resources", |r| {
                format!("{}/{}", r.group, r.kind)
            }),
            count_or_one(&spec.signature_keys, "keys", |k| k.key_id.clone()),
            orphaned_text(project),
        ]);
    }
    table
}

/// `<none>`, the single entry, or `N <what>` (argocd's list cells).
fn count_or_one<T>(items: &[T], what: &str, show: impl Fn(&T) -> String) -> String {
    match items {
        [] => "<none>".to_string(),
        [one] => show(one),
        many => format!("{} {what}", many.len()),
    }
}

fn destination_text(dest: &ApplicationDestination) -> String {
    let cluster = if dest.server.is_empty() {
        &dest.name
    } else {
        &dest.server
    };
    format!("{cluster},{}", dest.namespace)
}

fn orphaned_text(project: &AppProject) -> String {
    match &project.spec.orphaned_resources {
        None => "disabled".to_string(),
        Some(settings) => {
            let mut details = format!("warn={}", settings.is_warn());
            if !settings.ignore.is_empty() {
                details.push_str(&format!(", ignored {}", settings.ignore.len()));
            }
            format!("enabled ({details})")
        }
    }
}

async fn get(core: &Core, args: GetArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    let project = core
        .projects()
        .get_opt(name)
        .await
        .with_context(|| format!("reading project {name}"))?
        .with_context(|| format!("project {name} not found in namespace {}", core.namespace))?;
    print_project(&project, args.output)
}

fn print_project(project: &AppProject, output: ObjectFormat) -> anyhow::Result<ExitCode> {
    match output {
        ObjectFormat::Json => print_json(&project)?,
        ObjectFormat::Yaml => print_yaml(&project)?,
        ObjectFormat::Wide => print!("{}", project_summary(project)),
    }
    Ok(ExitCode::SUCCESS)
}

fn project_summary(project: &AppProject) -> String {
    let spec = &project.spec;
    let joined = |items: Vec<String>| or_none(&items.join(", "));
    summary(&[
        ("Name", project.metadata.name.clone().unwrap_or_default()),
        ("Description", spec.description.clone()),
        (
            "Destinations",
            joined(spec.destinations.iter().map(destination_text).collect()),
        ),
        ("Repositories", joined(spec.source_repos.clone())),
        (
            "Allowed Cluster Resources",
            joined(
                spec.cluster_resource_whitelist
                    .iter()
                    .map(|r| format!("{}/{}", r.group, r.kind))
                    .collect(),
            ),
        ),
        (
            "Denied Cluster Resources",
            joined(
                spec.cluster_resource_blacklist
                    .iter()
                    .map(|r| format!("{}/{}", r.group, r.kind))
                    .collect(),
            ),
        ),
        (
            "Allowed Namespaced Resources",
            match &spec.namespace_resource_whitelist {
                None => "all".to_string(),
                Some(list) => joined(
                    list.iter()
                        .map(|r| format!("{}/{}", r.group, r.kind))
                        .collect(),
                ),
            },
        ),
        (
            "Denied Namespaced Resources",
            joined(
                spec.namespace_resource_blacklist
                    .iter()
                    .map(|r| format!("{}/{}", r.group, r.kind))
                    .collect(),
            ),
        ),
        (
            "Signature keys",
            joined(
                spec.signature_keys
                    .iter()
                    .map(|k| k.key_id.clone())
                    .collect(),
            ),
        ),
        ("Orphaned Resources", orphaned_text(project)),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Create {
        #[command(flatten)]
        args: CreateArgs,
    }

    #[test]
    fn create_flags_become_the_project_spec() {
        let args = Create::try_parse_from([
            "create",
            "team",
            "--description",
            "the team's apps",
            "--src",
            "https://github.com/team/*",
            "-d",
            "https://kubernetes.default.svc,team-*",
            "-d",
            "prod,web",
            "--allow-cluster-resource",
            "/Namespace",
            "--deny-namespaced-resource",
            "networking.k8s.io/NetworkPolicy",
            "--orphaned-resources",
        ])
        .unwrap()
        .args;
        let mut project = AppProject::default();
        args.apply(&mut project).unwrap();
        assert_eq!(
            serde_json::to_value(&project.spec).unwrap(),
            serde_json::json!({
                "description": "the team's apps",
                "sourceRepos": ["https://github.com/team/*"],
                "destinations": [
                    {"server": "https://kubernetes.default.svc", "namespace": "team-*"},
                    {"name": "prod", "namespace": "web"}
                ],
                "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
                "namespaceResourceBlacklist": [{"group": "networking.k8s.io", "kind": "NetworkPolicy"}],
                "orphanedResources": {"warn": false}
            })
        );
        // Applying the same flags again adds nothing.
        let before = project.clone();
        args.apply(&mut project).unwrap();
        assert_eq!(project, before);
    }

    #[test]
    fn malformed_entries_are_refused() {
        assert_eq!(
            parse_destination("https://x").unwrap_err().to_string(),
            "--dest \"https://x\": expected SERVER,NAMESPACE"
        );
        assert_eq!(
            parse_group_kind("Namespace", "--f").unwrap(),
            ("".into(), "Namespace".into())
        );
        assert!(parse_group_kind("a/b/c", "--f").is_err());
        assert!(parse_group_kind("apps/", "--f").is_err());
    }

    #[test]
    fn list_and_get_summarize_like_argocd() {
        let default = AppProject::default_project("argocd");
        let table = project_table(std::slice::from_ref(&default)).render();
        let row: Vec<&str> = table.lines().nth(1).unwrap().split_whitespace().collect();
        assert_eq!(
            row,
            ["default", "*,*", "*", "*/*", "<none>", "<none>", "disabled"]
        );
        let text = project_summary(&default);
        assert!(
            text.contains("Destinations:                  *,*\n"),
            "{text}"
        );
        assert!(
            text.contains("Allowed Namespaced Resources:  all\n"),
            "{text}"
        );
    }
}
