//! `ferry appset`: ApplicationSets in the control namespace (core mode), with argocd's verbs,
//! flags and output. `generate` renders the Applications a set would make, here, without
//! creating anything, with the ApplicationSet controller's own code.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use ferry_appset::generators::{GitSource, Sources};
use ferry_git::RepoCache;
use ferry_types::secrets::SECRET_TYPE_CLUSTER;
use ferry_types::{Application, ApplicationSet};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::core::{Core, KubeArgs, is_not_found};
use crate::output::{ListFormat, ObjectFormat, Table, confirm, print_json, print_yaml, summary};
use crate::server::Mode;
use crate::server::apps::items;
use crate::server::client::{ApiClient, api_error_is, segment};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create ApplicationSets from manifests.
    Create(CreateArgs),
    /// Show the Applications ApplicationSets would generate, creating nothing.
    Generate(GenerateArgs),
    /// List ApplicationSets.
    List(ListArgs),
    /// Show an ApplicationSet.
    Get(GetArgs),
    /// Delete ApplicationSets (and, as their policy allows, their Applications).
    Delete(DeleteArgs),
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// ApplicationSet manifests (YAML or JSON; several documents each allowed).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Replace an existing ApplicationSet of the same name whose spec differs.
    #[arg(long)]
    upsert: bool,
    /// Show the Applications the ApplicationSets would make, creating nothing.
    #[arg(long)]
    dry_run: bool,
    /// Output of a dry run: the Applications' names (wide), or the ApplicationSet with them in
    /// `status.resources`.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
    /// Namespace of ApplicationSets whose manifest names none.
    #[arg(long = "appset-namespace")]
    appset_namespace: Option<String>,
    /// Wait until the ApplicationSet's ResourcesUpToDate condition is True (blocks while the set
    /// is in error, as argocd's).
    #[arg(long)]
    wait: bool,
}

/// `-o` of `generate`: argocd's formats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum GenerateFormat {
    #[default]
    Wide,
    Json,
    Yaml,
}

#[derive(clap::Args, Debug)]
struct GenerateArgs {
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: GenerateFormat,
    #[arg(long = "appset-namespace")]
    appset_namespace: Option<String>,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
    /// Only ApplicationSets with these labels (a label selector).
    #[arg(long, short = 'l')]
    selector: Option<String>,
    /// Only ApplicationSets whose template uses this project (repeatable).
    #[arg(long, short = 'p')]
    project: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct GetArgs {
    name: String,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ObjectFormat,
    /// Show the Helm parameters of the template's source.
    #[arg(long)]
    show_params: bool,
}

#[derive(clap::Args, Debug)]
struct DeleteArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Wait until each ApplicationSet is gone.
    #[arg(long)]
    wait: bool,
}

/// How often `--wait` looks again.
const WAIT_POLL: std::time::Duration = std::time::Duration::from_secs(1);

/// Polls `fetch` until the set's ResourcesUpToDate condition is True.
async fn wait_up_to_date<F, Fut>(name: &str, mut fetch: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<ApplicationSet>>>,
{
    loop {
        let Some(appset) = fetch().await? else {
            bail!("ApplicationSet {name:?} was deleted before reaching ResourcesUpToDate");
        };
        let up_to_date = appset.status.iter().flat_map(|s| &s.conditions).any(|c| {
            c.type_ == ferry_types::application_set::condition::RESOURCES_UP_TO_DATE
                && c.status == "True"
        });
        if up_to_date {
            return Ok(());
        }
        tokio::time::sleep(WAIT_POLL).await;
    }
}

/// Polls `exists` until the set is gone.
async fn wait_gone<F, Fut>(mut exists: F) -> anyhow::Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<bool>>,
{
    while exists().await? {
        tokio::time::sleep(WAIT_POLL).await;
    }
    Ok(())
}

pub async fn run(kube: &KubeArgs, mode: Mode, args: Args) -> anyhow::Result<ExitCode> {
    if let Mode::Server(session) = mode {
        return run_server(&session.api, args).await;
    }
    let core = Core::connect(kube).await?;
    match args.command {
        Command::Create(args) => create(&core, args).await,
        Command::Generate(args) => generate(&core, args).await,
        Command::List(args) => list(&core, args).await,
        Command::Get(args) => get(&core, args).await,
        Command::Delete(args) => delete(&core, args).await,
    }
}

fn appsets(core: &Core, namespace: &str) -> Api<ApplicationSet> {
    Api::namespaced(core.client.clone(), namespace)
}

/// The ApplicationSets of the files, each with a name and a namespace.
fn read(files: &[PathBuf], namespace: &str) -> anyhow::Result<Vec<ApplicationSet>> {
    let mut out = Vec::new();
    for file in files {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        for document in serde_yaml::Deserializer::from_str(&text) {
            let value = Value::deserialize(document)
                .with_context(|| format!("{}: not YAML", file.display()))?;
            if value.is_null() {
                continue;
            }
            let mut appset: ApplicationSet = serde_json::from_value(value)
                .with_context(|| format!("{}: not an ApplicationSet", file.display()))?;
            if appset
                .metadata
                .name
                .as_deref()
                .unwrap_or_default()
                .is_empty()
            {
                bail!(
                    "{}: the ApplicationSet has no metadata.name",
                    file.display()
                );
            }
            appset
                .metadata
                .namespace
                .get_or_insert_with(|| namespace.to_string());
            out.push(appset);
        }
    }
    Ok(out)
}

async fn create(core: &Core, args: CreateArgs) -> anyhow::Result<ExitCode> {
    core.prepare().await?;
    let namespace = args
        .appset_namespace
        .unwrap_or_else(|| core.namespace.clone());
    for mut appset in read(&args.files, &namespace)? {
        let name = appset.name_any();
        if args.dry_run {
            let apps = preview(core, std::slice::from_ref(&appset)).await?;
            appset.status.get_or_insert_default().resources =
                ferry_appset::controller::resource_statuses(&apps);
            print_dry_run(&appset, args.output)?;
            continue;
        }
        let api = appsets(core, &appset.namespace().unwrap_or_default());
        match api
            .get_opt(&name)
            .await
            .with_context(|| format!("reading ApplicationSet {name}"))?
        {
            None => {
                api.create(&PostParams::default(), &appset)
                    .await
                    .with_context(|| format!("creating ApplicationSet {name}"))?;
                println!("ApplicationSet '{name}' created");
            }
            Some(existing) if existing.spec == appset.spec => {
                println!("ApplicationSet '{name}' unchanged");
            }
            Some(mut existing) => {
                if !args.upsert {
                    bail!(
                        "existing ApplicationSet spec is different, use upsert flag to force update"
                    );
                }
                existing.spec = appset.spec.clone();
                existing.metadata.labels = appset.metadata.labels.clone();
                existing.metadata.annotations = appset.metadata.annotations.clone();
                api.replace(&name, &PostParams::default(), &existing)
                    .await
                    .with_context(|| format!("updating ApplicationSet {name}"))?;
                println!("ApplicationSet '{name}' updated");
            }
        }
        if args.wait {
            wait_up_to_date(&name, || async {
                api.get_opt(&name)
                    .await
                    .with_context(|| format!("reading ApplicationSet {name}"))
            })
            .await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The Applications of `appsets`, rendered here with the controller's code from the namespace's
/// cluster Secrets and repository credentials.
async fn preview(core: &Core, appsets: &[ApplicationSet]) -> anyhow::Result<Vec<Application>> {
    let cache_dir = tempfile::Builder::new()
        .prefix("ferry-appset-generate-")
        .tempdir()?;
    let git = GitSource {
        // With the trusted hosts of the control namespace.
        cache: RepoCache::new(cache_dir.path(), core.git_credentials().await?),
        max_checkout_bytes: None,
    };
    let cluster_secrets = core.typed_secrets(&[SECRET_TYPE_CLUSTER]).await?;
    let kube = ferry_appset::generators::Kube {
        client: core.client.clone(),
        namespace: core.namespace.clone(),
    };
    let sources = Sources {
        git: &git,
        cluster_secrets: &cluster_secrets,
        kube: Some(&kube),
        scm: &ferry_appset::generators::ScmSettings::default(),
    };
    let mut apps: Vec<Application> = Vec::new();
    for appset in appsets {
        ferry_appset::generators::check_entries(&appset.spec.generators)
            .map_err(|e| anyhow::anyhow!("ApplicationSet {}: {e}", appset.name_any()))?;
        let generated = ferry_appset::generate::applications(appset, &sources)
            .await
            .map_err(|e| anyhow::anyhow!("ApplicationSet {}: {e}", appset.name_any()))?;
        ferry_appset::generate::validate_names(appset, &generated)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        apps.extend(generated);
    }
    Ok(apps)
}

async fn generate(core: &Core, args: GenerateArgs) -> anyhow::Result<ExitCode> {
    let namespace = args
        .appset_namespace
        .unwrap_or_else(|| core.namespace.clone());
    let apps = preview(core, &read(&args.files, &namespace)?).await?;
    print_generated(&apps, args.output)
}

fn print_generated(apps: &[Application], output: GenerateFormat) -> anyhow::Result<ExitCode> {
    match output {
        GenerateFormat::Wide => print!("{}", crate::app::app_table(apps).render()),
        GenerateFormat::Json => print_json(&apps)?,
        GenerateFormat::Yaml => print_yaml(&apps)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// A dry run's answer: the set with the Applications it would own in `status.resources`.
fn print_dry_run(appset: &ApplicationSet, output: ObjectFormat) -> anyhow::Result<()> {
    println!("ApplicationSet '{}' (dry-run)", appset.name_any());
    match output {
        ObjectFormat::Json => print_json(appset)?,
        ObjectFormat::Yaml => print_yaml(appset)?,
        ObjectFormat::Wide => {
            let mut table = Table::new(&["APPLICATION"]);
            for resource in appset.status.iter().flat_map(|s| &s.resources) {
                table.row(vec![resource.name.clone()]);
            }
            print!("{}", table.render());
        }
    }
    Ok(())
}

async fn list(core: &Core, args: ListArgs) -> anyhow::Result<ExitCode> {
    let mut params = ListParams::default();
    if let Some(selector) = &args.selector {
        params = params.labels(selector);
    }
    let all = appsets(core, &core.namespace)
        .list(&params)
        .await
        .context("listing ApplicationSets")?
        .items;
    let shown: Vec<_> = all
        .into_iter()
        .filter(|s| args.project.is_empty() || args.project.iter().any(|p| *p == project(s)))
        .collect();
    print_list(&shown, args.output)
}

fn print_list(shown: &[ApplicationSet], output: ListFormat) -> anyhow::Result<ExitCode> {
    match output {
        ListFormat::Wide => print!("{}", table(shown).render()),
        ListFormat::Json => print_json(&shown)?,
        ListFormat::Yaml => print_yaml(&shown)?,
        ListFormat::Name => {
            for appset in shown {
                println!("{}", appset.name_any());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn template_str<'a>(appset: &'a ApplicationSet, path: &[&str]) -> &'a str {
    let mut value = &appset.spec.template.spec;
    for key in path {
        value = &value[*key];
    }
    value.as_str().unwrap_or_default()
}

fn project(appset: &ApplicationSet) -> String {
    match template_str(appset, &["project"]) {
        "" => "default".to_string(),
        project => project.to_string(),
    }
}

fn health(appset: &ApplicationSet) -> String {
    appset
        .status
        .as_ref()
        .and_then(|s| s.health.as_ref())
        .map(|h| h.status.to_string())
        .unwrap_or_default()
}

/// The conditions that hold (status True), as argocd lists them.
fn true_conditions(appset: &ApplicationSet) -> String {
    let types: Vec<_> = appset
        .status
        .iter()
        .flat_map(|s| &s.conditions)
        .filter(|c| c.status == "True")
        .map(|c| c.type_.as_str())
        .collect();
    types.join(",")
}

fn sync_policy(appset: &ApplicationSet) -> String {
    match &appset.spec.sync_policy {
        Some(policy) => serde_json::to_value(appset.applications_sync())
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .map(|sync| {
                if policy.preserve_resources_on_deletion {
                    format!("{sync} (preserve resources)")
                } else {
                    sync
                }
            })
            .unwrap_or_default(),
        None => "nil".to_string(),
    }
}

fn table(appsets: &[ApplicationSet]) -> Table {
    let mut table = Table::new(&[
        "NAME",
        "PROJECT",
        "SYNCPOLICY",
        "HEALTH",
        "CONDITIONS",
        "REPO",
        "PATH",
        "TARGET",
    ]);
    for appset in appsets {
        table.row(vec![
            appset.name_any(),
            project(appset),
            sync_policy(appset),
            health(appset),
            true_conditions(appset),
            template_str(appset, &["source", "repoURL"]).to_string(),
            template_str(appset, &["source", "path"]).to_string(),
            template_str(appset, &["source", "targetRevision"]).to_string(),
        ]);
    }
    table
}

async fn get(core: &Core, args: GetArgs) -> anyhow::Result<ExitCode> {
    let appset = appsets(core, &core.namespace)
        .get(&args.name)
        .await
        .with_context(|| format!("reading ApplicationSet {}", args.name))?;
    print_appset(&appset, &args)
}

fn print_appset(appset: &ApplicationSet, args: &GetArgs) -> anyhow::Result<ExitCode> {
    let appset = appset.clone();
    match args.output {
        ObjectFormat::Json => print_json(&appset)?,
        ObjectFormat::Yaml => print_yaml(&appset)?,
        ObjectFormat::Wide => {
            let server = match template_str(&appset, &["destination", "server"]) {
                "" => template_str(&appset, &["destination", "name"]),
                server => server,
            };
            print!(
                "{}",
                summary(&[
                    ("Name", appset.name_any()),
                    ("Project", project(&appset)),
                    ("Server", server.to_string()),
                    (
                        "Namespace",
                        template_str(&appset, &["destination", "namespace"]).to_string()
                    ),
                    ("Health Status", health(&appset)),
                    (
                        "Repo",
                        template_str(&appset, &["source", "repoURL"]).to_string()
                    ),
                    (
                        "Path",
                        template_str(&appset, &["source", "path"]).to_string()
                    ),
                    (
                        "Target",
                        template_str(&appset, &["source", "targetRevision"]).to_string()
                    ),
                    ("SyncPolicy", sync_policy(&appset)),
                ])
            );
            let mut conditions = Table::new(&["CONDITION", "STATUS", "MESSAGE", "LAST TRANSITION"]);
            for c in appset.status.iter().flat_map(|s| &s.conditions) {
                conditions.row(vec![
                    c.type_.clone(),
                    c.status.clone(),
                    c.message.clone(),
                    c.last_transition_time
                        .as_ref()
                        .map(|t| t.0.to_string())
                        .unwrap_or_default(),
                ]);
            }
            println!();
            print!("{}", conditions.render());
            if args.show_params {
                print_helm_params(&appset);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The Helm parameters of the template's source, as argocd's `--show-params` prints them.
fn print_helm_params(appset: &ApplicationSet) {
    let parameters = appset.spec.template.spec["source"]["helm"]["parameters"].as_array();
    let Some(parameters) = parameters.filter(|p| !p.is_empty()) else {
        return;
    };
    let mut table = Table::new(&["NAME", "VALUE"]);
    for parameter in parameters {
        let text = |key: &str| parameter[key].as_str().unwrap_or_default().to_string();
        table.row(vec![text("name"), text("value")]);
    }
    println!();
    print!("{}", table.render());
}

async fn delete(core: &Core, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let api = appsets(core, &core.namespace);
    for name in &args.names {
        let question = format!(
            "Are you sure you want to delete '{name}' and all its Applications? (Applications \
             are kept when its syncPolicy does not allow deletes)"
        );
        if !args.yes && !confirm(&question)? {
            println!("The command to delete '{name}' was cancelled.");
            continue;
        }
        match api.delete(name, &DeleteParams::foreground()).await {
            Ok(_) => {
                if args.wait {
                    wait_gone(|| async {
                        let found = api.get_opt(name).await;
                        Ok(found
                            .with_context(|| format!("reading ApplicationSet {name}"))?
                            .is_some())
                    })
                    .await?;
                }
                println!("applicationset '{name}' deleted");
            }
            Err(err) => {
                let err = anyhow::Error::from(err);
                if is_not_found(&err) {
                    bail!("ApplicationSet {name} not found");
                }
                return Err(err.context(format!("deleting ApplicationSet {name}")));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The verbs through a ferry server's `/api/v1/applicationsets`, printed as in core mode.
async fn run_server(api: &ApiClient, args: Args) -> anyhow::Result<ExitCode> {
    const APPSETS: &str = "/api/v1/applicationsets";
    let path = |name: &str| format!("{APPSETS}/{}", segment(name));
    match args.command {
        Command::Create(args) => {
            let namespace = args.appset_namespace.clone().unwrap_or_default();
            for appset in read(&args.files, &namespace)? {
                let name = appset.name_any();
                let existing = match api.get::<ApplicationSet>(&path(&name), &[]).await {
                    Ok(existing) => Some(existing),
                    Err(err)
                        if api_error_is(&err, |e| e.is_not_found() || e.is_permission_denied()) =>
                    {
                        None
                    }
                    Err(err) => return Err(err.context(format!("reading ApplicationSet {name}"))),
                };
                let query = [
                    ("upsert", args.upsert.to_string()),
                    ("dryRun", args.dry_run.to_string()),
                ];
                let written: ApplicationSet = api
                    .call(Method::POST, APPSETS, &query, Some(&appset))
                    .await
                    .with_context(|| format!("creating ApplicationSet {name}"))?;
                if args.dry_run {
                    print_dry_run(&written, args.output)?;
                    continue;
                }
                let action = match existing {
                    None => "created",
                    Some(existing) if existing.spec == written.spec => "unchanged",
                    Some(_) => "updated",
                };
                println!("ApplicationSet '{name}' {action}");
                if args.wait {
                    wait_up_to_date(&name, || async {
                        match api.get::<ApplicationSet>(&path(&name), &[]).await {
                            Ok(found) => Ok(Some(found)),
                            Err(err)
                                if api_error_is(&err, |e| {
                                    e.is_not_found() || e.is_permission_denied()
                                }) =>
                            {
                                Ok(None)
                            }
                            Err(err) => Err(err.context(format!("reading ApplicationSet {name}"))),
                        }
                    })
                    .await?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate(args) => {
            let namespace = args.appset_namespace.clone().unwrap_or_default();
            let mut apps: Vec<Application> = Vec::new();
            for appset in read(&args.files, &namespace)? {
                let mut answer: Value = api
                    .call(
                        Method::POST,
                        &format!("{APPSETS}/generate"),
                        &[],
                        Some(&json!({"applicationSet": appset})),
                    )
                    .await
                    .with_context(|| format!("generating ApplicationSet {}", appset.name_any()))?;
                if let Some(generated) = answer.get_mut("applications").map(Value::take)
                    && !generated.is_null()
                {
                    apps.extend(serde_json::from_value::<Vec<Application>>(generated)?);
                }
            }
            print_generated(&apps, args.output)
        }
        Command::List(args) => {
            let mut query: Vec<(&str, String)> = args
                .project
                .iter()
                .map(|p| ("projects", p.clone()))
                .collect();
            if let Some(selector) = &args.selector {
                query.push(("selector", selector.clone()));
            }
            let listed: Vec<ApplicationSet> = items(
                api.get(APPSETS, &query)
                    .await
                    .context("listing ApplicationSets")?,
            )?;
            print_list(&listed, args.output)
        }
        Command::Get(args) => {
            let appset: ApplicationSet = api
                .get(&path(&args.name), &[])
                .await
                .with_context(|| format!("reading ApplicationSet {}", args.name))?;
            print_appset(&appset, &args)
        }
        Command::Delete(args) => {
            for name in &args.names {
                let question = format!(
                    "Are you sure you want to delete '{name}' and all its Applications? \
                     (Applications are kept when its syncPolicy does not allow deletes)"
                );
                if !args.yes && !confirm(&question)? {
                    println!("The command to delete '{name}' was cancelled.");
                    continue;
                }
                api.call::<Value>(Method::DELETE, &path(name), &[], None::<&Value>)
                    .await
                    .with_context(|| format!("deleting ApplicationSet {name}"))?;
                if args.wait {
                    wait_gone(|| async {
                        match api.get::<ApplicationSet>(&path(name), &[]).await {
                            Ok(_) => Ok(true),
                            // The server answers a missing set as one it may not see.
                            Err(err)
                                if api_error_is(&err, |e| {
                                    e.is_not_found() || e.is_permission_denied()
                                }) =>
                            {
                                Ok(false)
                            }
                            Err(err) => Err(err.context(format!("reading ApplicationSet {name}"))),
                        }
                    })
                    .await?;
                }
                println!("applicationset '{name}' deleted");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
