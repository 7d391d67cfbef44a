//! `ferry wf`, `ferry wf template` and `ferry cron`: the `argo` CLI's verbs over the cluster's
//! Workflows, WorkflowTemplates and CronWorkflows, through the kubeconfig as `argo` does
//! without an Argo Server. What the verbs do to a workflow is ferry-workflow's
//! (`control`, `retry`, `submit`, `lint`); this module parses, calls and prints.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferry_types::workflow::{Phase, labels};
use ferry_types::{ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowTemplate};
use ferry_workflow::control::{self, NodeSelector, Shutdown};
use ferry_workflow::{lint, retry, submit};
use futures::AsyncBufReadExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{DeleteParams, ListParams, LogParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::Value;

use crate::core::{Core, KubeArgs};
use crate::output::{print_json, print_yaml};

pub mod cron;
mod files;
mod print;
mod stored;
mod template;

/// The namespace option of every verb (`argo`'s `-n`; the global `-N` works too).
#[derive(clap::Args, Debug, Clone)]
pub struct Ns {
    /// Namespace (default: the kubeconfig context's).
    #[arg(long = "namespace", short = 'n')]
    namespace: Option<String>,
}

/// A client and the namespace the verb works in.
pub struct Target {
    pub client: Client,
    pub namespace: String,
}

impl Target {
    pub async fn connect(kube: &KubeArgs, ns: &Ns) -> anyhow::Result<Self> {
        let core = Core::connect(kube).await?;
        let namespace = ns
            .namespace
            .clone()
            .or_else(|| kube.namespace.clone())
            .unwrap_or_else(|| core.client.default_namespace().to_string());
        Ok(Self {
            client: core.client,
            namespace,
        })
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn workflows(&self) -> Api<Workflow> {
        self.api()
    }
}

/// `-o` of the commands that print a workflow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// The summary and the node tree.
    #[default]
    Wide,
    Name,
    Json,
    Yaml,
}

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Submit workflows from files, or from a WorkflowTemplate, ClusterWorkflowTemplate or CronWorkflow.
    Submit(SubmitArgs),
    /// Validate files or directories of manifests (offline: references resolve among the files).
    Lint(LintArgs),
    /// List workflows.
    List(ListArgs),
    /// Show a workflow: its summary and node tree.
    Get(GetArgs),
    /// Show a workflow again whenever it changes, until it completes.
    Watch(NameArgs),
    /// Wait for workflows to complete (exit 1 if one failed).
    Wait(NamesArgs),
    /// Print the logs of a workflow's pods.
    Logs(LogsArgs),
    /// Retry a failed workflow: its failed steps run again, the succeeded ones are kept.
    Retry(RetryArgs),
    /// Submit a new workflow from a workflow's spec.
    Resubmit(ResubmitArgs),
    /// Suspend workflows: nothing new starts until resumed.
    Suspend(NamesArgs),
    /// Resume suspended workflows, or only the suspend nodes a selector picks.
    Resume(ResumeArgs),
    /// Stop workflows: running pods deleted, the exit handler still runs.
    Stop(NamesArgs),
    /// Terminate workflows: running pods deleted, nothing more runs.
    Terminate(NamesArgs),
    /// Delete workflows.
    Delete(DeleteArgs),
    /// Manage WorkflowTemplates.
    Template(template::Args),
}

#[derive(clap::Args)]
struct SubmitArgs {
    /// Workflow manifests (`-` for standard input).
    files: Vec<String>,
    /// Submit from an existing resource: workflowtemplate/NAME, clusterworkflowtemplate/NAME or cronwf/NAME.
    #[arg(long, conflicts_with = "files", value_name = "KIND/NAME")]
    from: Option<String>,
    /// An input parameter, NAME=VALUE (repeatable).
    #[arg(long = "parameter", short = 'p')]
    parameters: Vec<String>,
    /// A YAML or JSON file of parameters (a map of name to value).
    #[arg(long, short = 'f')]
    parameter_file: Option<String>,
    /// Override spec.entrypoint.
    #[arg(long)]
    entrypoint: Option<String>,
    /// Override metadata.name.
    #[arg(long)]
    name: Option<String>,
    /// Override metadata.generateName.
    #[arg(long)]
    generate_name: Option<String>,
    /// Run all pods with this service account.
    #[arg(long)]
    serviceaccount: Option<String>,
    /// Labels to add, KEY=VALUE,...
    #[arg(long, short = 'l')]
    labels: Option<String>,
    /// Wait for the workflow to complete.
    #[arg(long, short = 'w', conflicts_with = "watch")]
    wait: bool,
    /// Show the workflow whenever it changes until it completes.
    #[arg(long)]
    watch: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct LintArgs {
    /// Files or directories.
    #[arg(required = true)]
    paths: Vec<String>,
    /// Accepted for `argo lint` compatibility: linting is always offline.
    #[arg(long)]
    offline: bool,
}

#[derive(clap::Args)]
struct ListArgs {
    /// Only running workflows.
    #[arg(long, conflicts_with = "completed")]
    running: bool,
    /// Only completed workflows.
    #[arg(long)]
    completed: bool,
    /// Only these phases (comma separated).
    #[arg(long, value_delimiter = ',')]
    status: Vec<String>,
    /// Label selector.
    #[arg(long = "selector", short = 'l')]
    selector: Option<String>,
    /// Only names starting with this.
    #[arg(long)]
    prefix: Option<String>,
    /// Workflows of all namespaces.
    #[arg(long, short = 'A')]
    all_namespaces: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct GetArgs {
    names: Vec<String>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct NameArgs {
    name: String,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct NamesArgs {
    #[arg(required = true)]
    names: Vec<String>,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct LogsArgs {
    name: String,
    /// Only this pod's logs.
    pod: Option<String>,
    /// The container.
    #[arg(long, short = 'c', default_value = "main")]
    container: String,
    /// Keep streaming (each pod in turn).
    #[arg(long)]
    follow: bool,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct RetryArgs {
    name: String,
    /// Also run again the succeeded nodes --node-field-selector picks (and what follows them).
    #[arg(long)]
    restart_successful: bool,
    /// Nodes to run again with --restart-successful, e.g. displayName=build.
    #[arg(long)]
    node_field_selector: Option<String>,
    /// An input parameter, NAME=VALUE (repeatable).
    #[arg(long = "parameter", short = 'p')]
    parameters: Vec<String>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct ResubmitArgs {
    name: String,
    /// An input parameter, NAME=VALUE (repeatable).
    #[arg(long = "parameter", short = 'p')]
    parameters: Vec<String>,
    /// Wait for the new workflow to complete.
    #[arg(long, short = 'w')]
    wait: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: Format,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct ResumeArgs {
    #[arg(required = true)]
    names: Vec<String>,
    /// Only the suspend nodes this picks, e.g. displayName=approve.
    #[arg(long)]
    node_field_selector: Option<String>,
    #[command(flatten)]
    ns: Ns,
}

#[derive(clap::Args)]
struct DeleteArgs {
    names: Vec<String>,
    /// Every workflow of the namespace.
    #[arg(long)]
    all: bool,
    /// Completed workflows.
    #[arg(long)]
    completed: bool,
    /// Completed workflows finished longer ago than this (e.g. 10m, 3h).
    #[arg(long)]
    older: Option<String>,
    /// Label selector.
    #[arg(long = "selector", short = 'l')]
    selector: Option<String>,
    #[command(flatten)]
    ns: Ns,
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Submit(args) => submit(kube, args).await,
        Command::Lint(args) => {
            let files = files::read(&args.paths)?;
            Ok(print_lint(&files))
        }
        Command::List(args) => list(kube, args).await,
        Command::Get(args) => {
            let target = Target::connect(kube, &args.ns).await?;
            for name in &args.names {
                let workflow = target.workflows().get(name).await?;
                show(&workflow, args.output)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Watch(args) => {
            let target = Target::connect(kube, &args.ns).await?;
            watch(&target, &args.name).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Wait(args) => {
            let target = Target::connect(kube, &args.ns).await?;
            wait(&target, &args.names).await
        }
        Command::Logs(args) => logs(kube, args).await,
        Command::Retry(args) => retry(kube, args).await,
        Command::Resubmit(args) => {
            let target = Target::connect(kube, &args.ns).await?;
            let old = target.workflows().get(&args.name).await?;
            let new = retry::resubmit(&old, &args.parameters).map_err(anyhow::Error::msg)?;
            let created = target
                .workflows()
                .create(&PostParams::default(), &new)
                .await?;
            show(&created, args.output)?;
            if args.wait {
                return wait(&target, &[created.name_any()]).await;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Suspend(args) => {
            edit(kube, &args.ns, &args.names, "suspended", control::suspend).await
        }
        Command::Resume(args) => {
            let selector = args
                .node_field_selector
                .as_deref()
                .map(NodeSelector::parse)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            edit(kube, &args.ns, &args.names, "resumed", |w| {
                control::resume(w, selector.as_ref(), jiff::Timestamp::now())
            })
            .await
        }
        Command::Stop(args) => {
            edit(kube, &args.ns, &args.names, "stopped", |w| {
                control::shutdown(w, Shutdown::Stop)
            })
            .await
        }
        Command::Terminate(args) => {
            edit(kube, &args.ns, &args.names, "terminated", |w| {
                control::shutdown(w, Shutdown::Terminate)
            })
            .await
        }
        Command::Delete(args) => delete(kube, args).await,
        Command::Template(args) => template::run(kube, args).await,
    }
}

/// Prints one workflow as `-o` says.
fn show(workflow: &Workflow, format: Format) -> anyhow::Result<()> {
    match format {
        Format::Wide => print!("{}", print::workflow(workflow)),
        Format::Name => println!("{}", workflow.name_any()),
        Format::Json => print_json(workflow)?,
        Format::Yaml => print_yaml(workflow)?,
    }
    Ok(())
}

/// The first error of linting `files` in the target's namespace, as a create checks them.
pub async fn first_error(
    target: &Target,
    files: Vec<(String, Vec<Value>)>,
) -> anyhow::Result<Option<String>> {
    lint::first_error(&target.client, &target.namespace, files).await
}

/// `argo lint`'s pretty output; exit 1 on an error or when nothing was linted.
pub fn print_lint(files: &[(String, Vec<Value>)]) -> ExitCode {
    let results = lint::lint(files);
    let mut errors = 0;
    for result in &results {
        if result.errors.is_empty() {
            continue;
        }
        println!("{}:", result.file);
        for error in &result.errors {
            println!("   ✖ {error}");
        }
        println!();
        errors += result.errors.len();
    }
    if !results.iter().any(|r| r.linted) {
        println!("✖ found nothing to lint in the specified paths, failing...");
        return ExitCode::FAILURE;
    }
    if errors > 0 {
        println!("✖ {errors} linting errors found!");
        return ExitCode::FAILURE;
    }
    println!("✔ no linting errors found!");
    ExitCode::SUCCESS
}

async fn submit(kube: &KubeArgs, args: SubmitArgs) -> anyhow::Result<ExitCode> {
    let target = Target::connect(kube, &args.ns).await?;
    let mut workflows: Vec<Workflow> = match &args.from {
        Some(from) => vec![from_resource(&target, from).await?],
        None if args.files.is_empty() => bail!("give workflow files or --from KIND/NAME"),
        None => files::objects(&files::read(&args.files)?, "Workflow")?,
    };
    if workflows.is_empty() {
        bail!("no workflow found in given files");
    }
    if args.watch && workflows.len() > 1 {
        bail!("cannot watch more than one workflow");
    }
    let mut parameters = args.parameters.clone();
    if let Some(file) = &args.parameter_file {
        parameters.extend(parameter_file(file)?);
    }
    let options = submit::Options {
        name: args.name.clone(),
        generate_name: args.generate_name.clone(),
        entrypoint: args.entrypoint.clone(),
        service_account: args.serviceaccount.clone(),
        parameters,
        labels: parse_labels(args.labels.as_deref())?,
    };
    for workflow in &mut workflows {
        submit::apply(workflow, &options).map_err(anyhow::Error::msg)?;
        workflow
            .metadata
            .namespace
            .get_or_insert_with(|| target.namespace.clone());
        if let Err(message) = submit::check(&target.client, workflow).await? {
            bail!("failed to submit workflow: {message}");
        }
    }
    let mut names = Vec::new();
    for workflow in &workflows {
        let namespace = workflow.namespace().unwrap_or_default();
        let api: Api<Workflow> = Api::namespaced(target.client.clone(), &namespace);
        let created = api
            .create(&PostParams::default(), workflow)
            .await
            .context("failed to submit workflow")?;
        show(&created, args.output)?;
        names.push(created.name_any());
    }
    if args.watch {
        watch(&target, &names[0]).await?;
    } else if args.wait {
        return wait(&target, &names).await;
    }
    Ok(ExitCode::SUCCESS)
}

/// The workflow `--from KIND/NAME` gives.
async fn from_resource(target: &Target, from: &str) -> anyhow::Result<Workflow> {
    let Some((kind, name)) = from.split_once('/') else {
        bail!(
            "resource identifier '{from}' is malformed. Should be `kind/name`, e.g. cronwf/hello-world-cwf"
        );
    };
    Ok(match kind.to_lowercase().as_str() {
        "workflowtemplate" | "workflowtemplates" | "wftmpl" => {
            target.api::<WorkflowTemplate>().get(name).await?;
            submit::from_template(name, false)
        }
        "clusterworkflowtemplate" | "clusterworkflowtemplates" | "cwftmpl" => {
            Api::<ClusterWorkflowTemplate>::all(target.client.clone())
                .get(name)
                .await?;
            submit::from_template(name, true)
        }
        "cronworkflow" | "cronworkflows" | "cronwf" | "cwf" => {
            let cron = target.api::<CronWorkflow>().get(name).await?;
            submit::from_cron(&cron)
        }
        other => {
            bail!("unsupported kind {other:?}: workflowtemplate, clusterworkflowtemplate or cronwf")
        }
    })
}

/// `--parameter-file`: a YAML or JSON map, each entry a `NAME=VALUE`.
fn parameter_file(path: &str) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
    let map: BTreeMap<String, Value> =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {path}"))?;
    Ok(map
        .into_iter()
        .map(|(name, value)| match value {
            Value::String(text) => format!("{name}={text}"),
            other => format!("{name}={other}"),
        })
        .collect())
}

/// `KEY=VALUE,KEY=VALUE`.
fn parse_labels(text: Option<&str>) -> anyhow::Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for pair in text
        .into_iter()
        .flat_map(|t| t.split(','))
        .filter(|p| !p.is_empty())
    {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("expected labels of the form: NAME1=VALUE2,NAME2=VALUE2. Received: {pair}");
        };
        labels.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(labels)
}

async fn list(kube: &KubeArgs, args: ListArgs) -> anyhow::Result<ExitCode> {
    let target = Target::connect(kube, &args.ns).await?;
    let api: Api<Workflow> = if args.all_namespaces {
        Api::all(target.client.clone())
    } else {
        target.workflows()
    };
    let mut selector: Vec<String> = args.selector.iter().cloned().collect();
    if args.completed {
        selector.push(format!("{}=true", labels::COMPLETED));
    }
    if args.running {
        selector.push(format!("{}!=true", labels::COMPLETED));
    }
    let params = ListParams::default().labels(&selector.join(","));
    let mut workflows: Vec<Workflow> = api
        .list(&params)
        .await?
        .items
        .into_iter()
        .filter(|w| {
            args.prefix
                .as_deref()
                .is_none_or(|p| w.name_any().starts_with(p))
        })
        .filter(|w| {
            args.status.is_empty()
                || args
                    .status
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(phase_of(w).as_str()))
        })
        .collect();
    // Newest first, as `argo list`.
    workflows.sort_by(|a, b| {
        let at = |w: &Workflow| w.metadata.creation_timestamp.as_ref().map(|t| t.0);
        at(b)
            .cmp(&at(a))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
    match args.output {
        Format::Json => print_json(&workflows)?,
        Format::Yaml => print_yaml(&workflows)?,
        Format::Name => workflows.iter().for_each(|w| println!("{}", w.name_any())),
        Format::Wide if workflows.is_empty() => println!("No workflows found"),
        Format::Wide => print!("{}", print::list(&workflows, args.all_namespaces)),
    }
    Ok(ExitCode::SUCCESS)
}

fn phase_of(workflow: &Workflow) -> Phase {
    workflow
        .status
        .as_ref()
        .and_then(|s| s.phase)
        .unwrap_or(Phase::Pending)
}

fn is_done(workflow: &Workflow) -> bool {
    phase_of(workflow).is_completed()
}

/// Polls `name` until it completes; each change is shown.
async fn watch(target: &Target, name: &str) -> anyhow::Result<()> {
    let mut last = None;
    loop {
        let workflow = target.workflows().get(name).await?;
        if last.as_ref() != workflow.metadata.resource_version.as_ref() {
            println!("{}", print::workflow(&workflow));
            last = workflow.metadata.resource_version.clone();
        }
        if is_done(&workflow) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// `argo wait`: `NAME PHASE at FINISHED` for each; exit 1 if one failed.
async fn wait(target: &Target, names: &[String]) -> anyhow::Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in names {
        let workflow = loop {
            let workflow = target.workflows().get(name).await?;
            if is_done(&workflow) {
                break workflow;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
        let status = workflow.status.clone().unwrap_or_default();
        let finished = status
            .finished_at
            .map(|t| t.0.to_string())
            .unwrap_or_default();
        let phase = phase_of(&workflow);
        println!("{name} {} at {finished}", phase.as_str());
        if phase.is_failed_or_error() {
            code = ExitCode::FAILURE;
        }
    }
    Ok(code)
}

async fn logs(kube: &KubeArgs, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let target = Target::connect(kube, &args.ns).await?;
    let pods: Api<Pod> = target.api();
    let selector = format!("{}={}", labels::WORKFLOW, args.name);
    let mut listed = pods
        .list(&ListParams::default().labels(&selector))
        .await?
        .items;
    listed.retain(|p| args.pod.as_ref().is_none_or(|name| &p.name_any() == name));
    listed.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    if listed.is_empty() && args.pod.is_some() {
        bail!(
            "pod {:?} of workflow {:?} not found",
            args.pod.unwrap_or_default(),
            args.name
        );
    }
    for pod in listed {
        let name = pod.name_any();
        let params = LogParams {
            container: Some(args.container.clone()),
            follow: args.follow,
            ..LogParams::default()
        };
        let mut lines = pods.log_stream(&name, &params).await?.lines();
        while let Some(line) = futures::StreamExt::next(&mut lines).await {
            println!("{name}: {}", line?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn retry(kube: &KubeArgs, args: RetryArgs) -> anyhow::Result<ExitCode> {
    let target = Target::connect(kube, &args.ns).await?;
    let selector = args
        .node_field_selector
        .as_deref()
        .map(NodeSelector::parse)
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let written = retry::retry_in_cluster(
        &target.workflows(),
        &target.api::<Pod>(),
        &args.name,
        args.restart_successful,
        selector.as_ref(),
        &args.parameters,
    )
    .await?;
    show(&written, args.output)?;
    Ok(ExitCode::SUCCESS)
}

/// Applies `change` to each workflow: `workflow NAME <done>`.
async fn edit(
    kube: &KubeArgs,
    ns: &Ns,
    names: &[String],
    done: &str,
    change: impl Fn(&mut Workflow) -> Result<(), String>,
) -> anyhow::Result<ExitCode> {
    let target = Target::connect(kube, ns).await?;
    for name in names {
        control::update(&target.workflows(), name, &change).await?;
        println!("workflow {name} {done}");
    }
    Ok(ExitCode::SUCCESS)
}

async fn delete(kube: &KubeArgs, args: DeleteArgs) -> anyhow::Result<ExitCode> {
    let target = Target::connect(kube, &args.ns).await?;
    let api = target.workflows();
    let mut names = args.names.clone();
    let everything = args.all || args.completed || args.older.is_some() || args.selector.is_some();
    if names.is_empty() && !everything {
        bail!("give workflow names, or --all, --completed, --older or --selector");
    }
    if everything {
        let older = args
            .older
            .as_deref()
            .map(ferry_workflow::duration::parse)
            .transpose()
            .map_err(anyhow::Error::msg)?;
        let params = ListParams::default().labels(args.selector.as_deref().unwrap_or(""));
        let now = jiff::Timestamp::now();
        for workflow in api.list(&params).await?.items {
            let finished = workflow.status.as_ref().and_then(|s| s.finished_at.clone());
            let picked = match older {
                Some(age) => is_done(&workflow) && finished.is_some_and(|f| f.0 + age < now),
                None => !args.completed || is_done(&workflow),
            };
            if picked {
                names.push(workflow.name_any());
            }
        }
        if names.is_empty() {
            println!("No resources found");
        }
    }
    for name in names {
        match api.delete(&name, &DeleteParams::default()).await {
            Ok(_) => println!("Workflow '{name}' deleted"),
            Err(kube::Error::Api(status)) if status.is_not_found() => {
                println!("Workflow '{name}' not found");
            }
            Err(err) => return Err(err).context(format!("deleting workflow {name}")),
        }
    }
    Ok(ExitCode::SUCCESS)
}
