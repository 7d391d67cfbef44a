//! `ferry render`: render a repository path, or the sources of an Argo CD Application manifest,
//! to Kubernetes manifests on stdout. The resolved commit of each source goes to stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferry_git::Credentials;
use ferry_render::{AppContext, PluginConfig};
use ferry_types::source::{
    ApplicationSource, ApplicationSourceDirectory, ApplicationSourceHelm,
    ApplicationSourceKustomize, HelmParameter, JsonnetVar,
};
use serde_json::Value;

use crate::rendering::{self, repo_url, split_kv};

/// `ferry render` arguments, boxed: the flag set is large and the command enum stays small.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    flags: Box<Flags>,
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("input").required(true).args(["repo", "app"])))]
struct Flags {
    /// Git repository URL, or a local path to a Git repository.
    #[arg(long)]
    repo: Option<String>,
    /// An Argo CD Application manifest (YAML or JSON); `spec.source` or `spec.sources` is rendered.
    #[arg(long, conflicts_with_all = ["revision", "path", "chart"])]
    app: Option<PathBuf>,
    /// Branch, tag or commit (default HEAD); the chart version with --chart.
    #[arg(long)]
    revision: Option<String>,
    /// Directory inside the repository.
    #[arg(long)]
    path: Option<String>,
    /// Chart name, when --repo is a Helm repository or OCI registry.
    #[arg(long)]
    chart: Option<String>,
    /// Application name (Helm's default release name, ARGOCD_APP_NAME).
    #[arg(long)]
    app_name: Option<String>,
    /// Destination namespace (Helm --namespace, ARGOCD_APP_NAMESPACE).
    #[arg(long, short = 'n')]
    namespace: Option<String>,
    /// Kubernetes version to render for (Helm --kube-version, KUBE_VERSION).
    #[arg(long)]
    kube_version: Option<String>,
    /// API versions available in the cluster (repeatable).
    #[arg(long = "api-versions")]
    api_versions: Vec<String>,

    /// Helm: set a value (`key=value`, repeatable).
    #[arg(long = "helm-set", value_name = "KEY=VALUE")]
    helm_set: Vec<String>,
    /// Helm: set a string value (`key=value`, repeatable).
    #[arg(long = "helm-set-string", value_name = "KEY=VALUE")]
    helm_set_string: Vec<String>,
    /// Helm: values file, relative to the source path (repeatable).
    #[arg(long = "values")]
    values: Vec<String>,
    /// Helm: release name (default: the application name).
    #[arg(long)]
    release_name: Option<String>,

    /// Kustomize: image override `[old=]name[:tag|@digest]` (repeatable).
    #[arg(long = "kustomize-image")]
    kustomize_image: Vec<String>,
    /// Kustomize: name prefix.
    #[arg(long)]
    name_prefix: Option<String>,

    /// Directory: include subdirectories.
    #[arg(long)]
    recurse: bool,
    /// Directory: glob of files to include.
    #[arg(long)]
    include: Option<String>,
    /// Directory: glob of files to exclude.
    #[arg(long)]
    exclude: Option<String>,
    /// Jsonnet: top-level argument `name=value` (repeatable).
    #[arg(long = "jsonnet-tla", value_name = "NAME=VALUE")]
    jsonnet_tla: Vec<String>,
    /// Jsonnet: top-level argument as code `name=code` (repeatable).
    #[arg(long = "jsonnet-tla-code", value_name = "NAME=CODE")]
    jsonnet_tla_code: Vec<String>,
    /// Jsonnet: external variable `name=value` (repeatable).
    #[arg(long = "jsonnet-ext-var", value_name = "NAME=VALUE")]
    jsonnet_ext_var: Vec<String>,
    /// Jsonnet: external variable as code `name=code` (repeatable).
    #[arg(long = "jsonnet-ext-var-code", value_name = "NAME=CODE")]
    jsonnet_ext_var_code: Vec<String>,
    /// Jsonnet: library directory, relative to the repository root (repeatable).
    #[arg(long = "jsonnet-libs")]
    jsonnet_libs: Vec<String>,

    /// Config-management plugin definition (`ConfigManagementPlugin` YAML, repeatable).
    #[arg(long = "plugin-config")]
    plugin_config: Vec<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t = Output::Yaml)]
    output: Output,
    #[command(flatten)]
    limits: rendering::Limits,
    /// Let kustomize remote resources, bases and components at `file://` URLs, and Helm
    /// dependencies at `file://` paths outside the repository, read this machine's disk
    /// (refused by default, and always by the controller and the API server).
    #[arg(long)]
    allow_local_remotes: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Yaml,
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let args = *args.flags;
    let (from_app, sources) = match &args.app {
        Some(file) => application(file)?,
        None => (AppContext::default(), vec![source_from_flags(&args)?]),
    };
    let app = app_context(&args, from_app);
    let git = rendering::repo_cache(Credentials::default());
    let mut plugins = Vec::new();
    for file in &args.plugin_config {
        let text =
            std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
        plugins.push(
            PluginConfig::from_yaml(&text)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("{}", file.display()))?,
        );
    }
    let renderer = rendering::renderer(git, plugins, &args.limits, args.allow_local_remotes);
    let rendered = renderer.render(&app, &sources).await?;
    for (i, s) in rendered.sources.iter().enumerate() {
        let kind = s
            .source_type
            .map_or_else(|| "ref only".to_string(), |k| k.to_string());
        eprintln!(
            "source {}: {} @ {} ({kind}, {} objects)",
            i + 1,
            s.repo_url,
            s.revision,
            s.objects
        );
    }
    match args.output {
        Output::Json => println!("{}", serde_json::to_string_pretty(&rendered.objects)?),
        Output::Yaml => {
            let mut out = String::new();
            for obj in &rendered.objects {
                out.push_str("---\n");
                out.push_str(&serde_yaml::to_string(obj)?);
            }
            print!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The Application facts: flags override what the manifest says.
fn app_context(args: &Flags, from_app: AppContext) -> AppContext {
    AppContext {
        name: args.app_name.clone().unwrap_or(from_app.name),
        project: from_app.project,
        namespace: args.namespace.clone().unwrap_or(from_app.namespace),
        kube_version: args.kube_version.clone().unwrap_or_default(),
        api_versions: args.api_versions.clone(),
        ..AppContext::default()
    }
}

/// The source described by the command-line flags. An option block (helm, kustomize,
/// directory) is only set when one of its flags is given, so the type is otherwise detected.
fn source_from_flags(args: &Flags) -> anyhow::Result<ApplicationSource> {
    let repo = args.repo.as_deref().expect("clap requires --repo or --app");
    let mut source = ApplicationSource {
        repo_url: if args.chart.is_some() {
            repo.to_string()
        } else {
            repo_url(repo)?
        },
        path: args.path.clone().unwrap_or_default(),
        target_revision: args.revision.clone().unwrap_or_default(),
        chart: args.chart.clone().unwrap_or_default(),
        ..Default::default()
    };
    let mut parameters = Vec::new();
    for (list, force_string) in [(&args.helm_set, false), (&args.helm_set_string, true)] {
        for kv in list {
            let (name, value) = split_kv(kv, "--helm-set")?;
            parameters.push(HelmParameter {
                name,
                value,
                force_string,
                ..Default::default()
            });
        }
    }
    if !parameters.is_empty() || !args.values.is_empty() || args.release_name.is_some() {
        source.helm = Some(ApplicationSourceHelm {
            parameters,
            value_files: args.values.clone(),
            release_name: args.release_name.clone().unwrap_or_default(),
            ..Default::default()
        });
    }
    if !args.kustomize_image.is_empty() || args.name_prefix.is_some() {
        source.kustomize = Some(ApplicationSourceKustomize {
            images: args.kustomize_image.clone(),
            name_prefix: args.name_prefix.clone().unwrap_or_default(),
            ..Default::default()
        });
    }
    let mut directory = ApplicationSourceDirectory {
        recurse: args.recurse,
        include: args.include.clone().unwrap_or_default(),
        exclude: args.exclude.clone().unwrap_or_default(),
        ..Default::default()
    };
    let vars = |list: &[String], code: bool| -> anyhow::Result<Vec<JsonnetVar>> {
        list.iter()
            .map(|kv| {
                let (name, value) = split_kv(kv, "jsonnet variable")?;
                Ok(JsonnetVar {
                    name,
                    value,
                    code,
                    ..Default::default()
                })
            })
            .collect()
    };
    directory.jsonnet.tlas = [
        vars(&args.jsonnet_tla, false)?,
        vars(&args.jsonnet_tla_code, true)?,
    ]
    .concat();
    directory.jsonnet.ext_vars = [
        vars(&args.jsonnet_ext_var, false)?,
        vars(&args.jsonnet_ext_var_code, true)?,
    ]
    .concat();
    directory.jsonnet.libs = args.jsonnet_libs.clone();
    if directory != ApplicationSourceDirectory::default() {
        source.directory = Some(directory);
    }
    Ok(source)
}

/// Reads an Application manifest: its context (name, destination namespace) and sources.
fn application(file: &Path) -> anyhow::Result<(AppContext, Vec<ApplicationSource>)> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let app: Value =
        serde_yaml::from_str(&text).with_context(|| format!("parsing {}", file.display()))?;
    let kind = app.get("kind").and_then(Value::as_str).unwrap_or_default();
    if kind != "Application" {
        bail!(
            "{}: expected an argoproj.io/v1alpha1 Application, found kind {kind:?}",
            file.display()
        );
    }
    let spec = app
        .get("spec")
        .with_context(|| format!("{}: no spec", file.display()))?;
    let sources: Vec<ApplicationSource> = match (spec.get("sources"), spec.get("source")) {
        // As in Argo CD, `sources` wins when both are set.
        (Some(list), _) if list.as_array().is_some_and(|l| !l.is_empty()) => {
            serde_json::from_value(list.clone())
        }
        (_, Some(one)) => serde_json::from_value(one.clone()).map(|s| vec![s]),
        _ => bail!("{}: spec has neither source nor sources", file.display()),
    }
    .with_context(|| format!("{}: invalid source", file.display()))?;
    for (i, s) in sources.iter().enumerate() {
        for field in s.unknown_fields() {
            eprintln!(
                "warning: {}: source {}: unknown field {field} is ignored",
                file.display(),
                i + 1
            );
        }
    }
    let context = AppContext {
        name: app
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        namespace: app
            .pointer("/spec/destination/namespace")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        project: match app.pointer("/spec/project").and_then(Value::as_str) {
            Some(project) if !project.is_empty() => project.to_string(),
            _ => "default".to_string(),
        },
        ..Default::default()
    };
    Ok((context, sources))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::{Cli, Command};

    fn render_namespace(args: &[&str]) -> Option<String> {
        let cli = Cli::try_parse_from(args).unwrap();
        let Command::Render(render) = cli.command else {
            panic!("not a render command")
        };
        render.flags.namespace
    }

    /// `--namespace` is also the core-mode commands' global control namespace option; render
    /// keeps its own meaning (the destination namespace), and the control namespace's default
    /// does not leak into it.
    #[test]
    fn render_keeps_its_own_namespace_option() {
        assert_eq!(
            render_namespace(&["ferry", "render", "--repo", "r", "--namespace", "prod"]).as_deref(),
            Some("prod")
        );
        assert_eq!(render_namespace(&["ferry", "render", "--repo", "r"]), None);
    }
}
