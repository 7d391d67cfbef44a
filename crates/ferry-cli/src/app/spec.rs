//! `ferry app create` and `ferry app set`: the flags describing an Application, applied to a new
//! one, a manifest, or an existing app; and, in core mode, the checks Argo CD's API server makes
//! before it stores an Application (through a server, the server makes them).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferry_types::Application;
use ferry_types::application::{DEFAULT_PROJECT, SyncPolicy, finalizer};
use ferry_types::source::{ApplicationSource, HelmParameter};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::PostParams;

use super::{Conn, get_app, project_of, update_app};
use crate::core::{Core, resolve_cluster};
use crate::rendering::{is_url, local_repo_url, split_kv};
use crate::server;
use crate::server::client::{ApiClient, api_error_is};

/// Rounds of read-change-write through a server before giving up on an app that keeps changing.
const ATTEMPTS: usize = 5;

/// Flags describing an Application; only the given ones change it.
#[derive(clap::Args, Debug)]
pub struct SpecFlags {
    /// Repository URL (Git, Helm repository or OCI registry), or a local Git repository path.
    #[arg(long)]
    repo: Option<String>,
    /// Directory inside the Git repository.
    #[arg(long)]
    path: Option<String>,
    /// Branch, tag or commit; the chart version for a Helm chart.
    #[arg(long)]
    revision: Option<String>,
    /// Helm chart name, when --repo is a Helm repository or OCI registry.
    #[arg(long)]
    helm_chart: Option<String>,
    /// Destination cluster API server URL.
    #[arg(long)]
    dest_server: Option<String>,
    /// Destination cluster name (instead of --dest-server).
    #[arg(long)]
    dest_name: Option<String>,
    /// Destination namespace.
    #[arg(long)]
    dest_namespace: Option<String>,
    /// AppProject.
    #[arg(long)]
    project: Option<String>,
    /// Sync policy.
    #[arg(long, value_enum)]
    sync_policy: Option<SyncPolicyFlag>,
    /// Automated sync deletes resources that left Git (`--auto-prune=false` turns it off).
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    auto_prune: Option<bool>,
    /// Automated sync also undoes changes made in the cluster.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    self_heal: Option<bool>,
    /// Automated sync may sync an empty set of resources.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    allow_empty: Option<bool>,
    /// Sync option such as `CreateNamespace=true` (repeatable); `!Name=value` removes one.
    #[arg(long = "sync-option", value_name = "OPTION")]
    sync_options: Vec<String>,
    /// Helm parameter (repeatable).
    #[arg(long = "helm-set", value_name = "KEY=VALUE")]
    helm_set: Vec<String>,
    /// Helm string parameter (repeatable).
    #[arg(long = "helm-set-string", value_name = "KEY=VALUE")]
    helm_set_string: Vec<String>,
    /// Helm values file, relative to the source path (repeatable).
    #[arg(long = "values", value_name = "FILE")]
    values: Vec<String>,
    /// Helm release name.
    #[arg(long)]
    release_name: Option<String>,
    /// Kustomize image override `[old=]name[:tag|@digest]` (repeatable).
    #[arg(long = "kustomize-image", value_name = "IMAGE")]
    kustomize_images: Vec<String>,
    /// Directory source: include subdirectories.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    directory_recurse: Option<bool>,
    /// Label on the Application (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    labels: Vec<String>,
    /// Annotation on the Application (repeatable).
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    annotations: Vec<String>,
    /// Add the finalizer that makes deleting the app delete its resources.
    #[arg(long)]
    set_finalizer: bool,
    /// Which source (1-based) of a multi-source app the source flags change.
    #[arg(long, value_name = "N")]
    source_position: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SyncPolicyFlag {
    /// Sync automatically when Git changes.
    #[value(aliases = ["auto", "automatic"])]
    Automated,
    /// Sync only when asked.
    #[value(alias = "manual")]
    None,
}

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Application name (optional with --file).
    name: Option<String>,
    /// An Application manifest to start from; flags override it.
    #[arg(long, short = 'f')]
    file: Option<PathBuf>,
    /// Update the app if it exists with a different spec.
    #[arg(long)]
    upsert: bool,
    #[command(flatten)]
    spec: Box<SpecFlags>,
}

#[derive(clap::Args, Debug)]
pub struct SetArgs {
    name: String,
    #[command(flatten)]
    spec: Box<SpecFlags>,
}

impl SpecFlags {
    fn changes_source(&self) -> bool {
        self.repo.is_some()
            || self.path.is_some()
            || self.revision.is_some()
            || self.helm_chart.is_some()
            || !self.helm_set.is_empty()
            || !self.helm_set_string.is_empty()
            || !self.values.is_empty()
            || self.release_name.is_some()
            || !self.kustomize_images.is_empty()
            || self.directory_recurse.is_some()
    }

    /// Applies the given flags to `app`; the flags not given leave it as it is.
    pub fn apply(&self, app: &mut Application) -> anyhow::Result<()> {
        let name = app.metadata.name.clone().unwrap_or_default();
        if self.changes_source() {
            let source = self.source_to_change(app)?;
            self.apply_source(source)?;
            if let Err(err) = source.explicit_type() {
                bail!("app {name}: {err}");
            }
        } else if self.source_position.is_some() {
            bail!(
                "--source-position needs a source flag (--repo, --path, --helm-set, ...) to apply"
            );
        }
        let dest = &mut app.spec.destination;
        if let Some(server) = &self.dest_server {
            dest.server = server.clone();
            if self.dest_name.is_none() {
                dest.name.clear();
            }
        }
        if let Some(dest_name) = &self.dest_name {
            dest.name = dest_name.clone();
            if self.dest_server.is_none() {
                dest.server.clear();
            }
        }
        if let Some(namespace) = &self.dest_namespace {
            dest.namespace = namespace.clone();
        }
        if let Some(project) = &self.project {
            app.spec.project = project.clone();
        }
        self.apply_sync_policy(app)?;
        let metadata = &mut app.metadata;
        for label in &self.labels {
            let (key, value) = split_kv(label, "--label")?;
            metadata.labels.get_or_insert_default().insert(key, value);
        }
        for annotation in &self.annotations {
            let (key, value) = split_kv(annotation, "--annotation")?;
            metadata
                .annotations
                .get_or_insert_default()
                .insert(key, value);
        }
        if self.set_finalizer {
            let finalizers = metadata.finalizers.get_or_insert_default();
            if !finalizers.iter().any(|f| f == finalizer::RESOURCES) {
                finalizers.push(finalizer::RESOURCES.to_string());
            }
        }
        Ok(())
    }

    /// The source the source flags change: `spec.source` (created if missing), or the one
    /// `--source-position` picks of a multi-source app.
    fn source_to_change<'a>(
        &self,
        app: &'a mut Application,
    ) -> anyhow::Result<&'a mut ApplicationSource> {
        let name = app.metadata.name.clone().unwrap_or_default();
        let count = app.spec.sources.len();
        if app.is_multi_source() {
            return match self.source_position {
                Some(n) if (1..=count).contains(&n) => Ok(&mut app.spec.sources[n - 1]),
                Some(n) => {
                    bail!("app {name} has {count} sources; --source-position {n} is out of range")
                }
                None => bail!(
                    "app {name} has {count} sources; choose the one to change with --source-position"
                ),
            };
        }
        if let Some(n) = self.source_position.filter(|n| *n != 1) {
            bail!("app {name} has a single source; --source-position {n} is out of range");
        }
        Ok(app.spec.source.get_or_insert_default())
    }

    fn apply_source(&self, source: &mut ApplicationSource) -> anyhow::Result<()> {
        if let Some(repo) = &self.repo {
            source.repo_url = if is_url(repo) || !Path::new(repo).exists() {
                repo.clone()
            } else {
                local_repo_url(Path::new(repo)).with_context(|| format!("--repo {repo}"))?
            };
        }
        if let Some(path) = &self.path {
            source.path = path.clone();
        }
        if let Some(revision) = &self.revision {
            source.target_revision = revision.clone();
        }
        if let Some(chart) = &self.helm_chart {
            source.chart = chart.clone();
        }
        let helm_given = !self.helm_set.is_empty()
            || !self.helm_set_string.is_empty()
            || !self.values.is_empty()
            || self.release_name.is_some();
        if helm_given {
            let helm = source.helm.get_or_insert_default();
            for (list, force_string) in [(&self.helm_set, false), (&self.helm_set_string, true)] {
                for kv in list {
                    let (name, value) = split_kv(kv, "--helm-set")?;
                    let parameter = HelmParameter {
                        name,
                        value,
                        force_string,
                        ..Default::default()
                    };
                    // As Argo CD: a parameter of the same name is replaced.
                    match helm
                        .parameters
                        .iter_mut()
                        .find(|p| p.name == parameter.name)
                    {
                        Some(existing) => *existing = parameter,
                        None => helm.parameters.push(parameter),
                    }
                }
            }
            for file in &self.values {
                if !helm.value_files.contains(file) {
                    helm.value_files.push(file.clone());
                }
            }
            if let Some(release) = &self.release_name {
                helm.release_name = release.clone();
            }
        }
        if !self.kustomize_images.is_empty() {
            let kustomize = source.kustomize.get_or_insert_default();
            for image in &self.kustomize_images {
                // An override for an image already overridden replaces it.
                match kustomize
                    .images
                    .iter_mut()
                    .find(|i| image_name(i) == image_name(image))
                {
                    Some(existing) => *existing = image.clone(),
                    None => kustomize.images.push(image.clone()),
                }
            }
        }
        if let Some(recurse) = self.directory_recurse {
            source.directory.get_or_insert_default().recurse = recurse;
        }
        Ok(())
    }

    fn apply_sync_policy(&self, app: &mut Application) -> anyhow::Result<()> {
        let name = app.metadata.name.clone().unwrap_or_default();
        let policy = app.spec.sync_policy.get_or_insert_default();
        match self.sync_policy {
            Some(SyncPolicyFlag::Automated) => {
                // An `enabled: false` left over from earlier switches automation back on.
                policy.automated.get_or_insert_default().enabled = None;
            }
            Some(SyncPolicyFlag::None) => policy.automated = None,
            None => {}
        }
        let automation = [
            ("--auto-prune", self.auto_prune),
            ("--self-heal", self.self_heal),
            ("--allow-empty", self.allow_empty),
        ];
        for (flag, value) in automation {
            let Some(value) = value else { continue };
            let automated_on = policy.is_automated();
            let Some(automated) = policy.automated.as_mut().filter(|_| automated_on) else {
                bail!("app {name}: {flag} needs automated sync (--sync-policy automated)");
            };
            match flag {
                "--auto-prune" => automated.prune = value,
                "--self-heal" => automated.self_heal = value,
                _ => automated.allow_empty = value,
            }
        }
        for option in &self.sync_options {
            match option.strip_prefix('!') {
                Some(remove) => policy.sync_options.retain(|o| o != remove),
                None => {
                    let key = option.split('=').next().unwrap_or_default();
                    policy
                        .sync_options
                        .retain(|o| o.split('=').next().unwrap_or_default() != key);
                    policy.sync_options.push(option.clone());
                }
            }
        }
        if app.spec.sync_policy.as_ref() == Some(&SyncPolicy::default()) {
            app.spec.sync_policy = None;
        }
        Ok(())
    }
}

/// The image a kustomize override is for: up to the first `=`, else the first `:` or `@`.
fn image_name(image: &str) -> &str {
    let end = image
        .find('=')
        .or_else(|| image.find(['@', ':']))
        .unwrap_or(image.len());
    &image[..end]
}

/// What Argo CD refuses before storing an Application, checked without the cluster.
fn check_spec(app: &Application) -> anyhow::Result<()> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let has_source = |s: &ApplicationSource| {
        !s.repo_url.is_empty() && (!s.path.is_empty() || s.is_chart() || !s.ref_name.is_empty())
    };
    if app.sources().is_empty() || !app.sources().iter().all(has_source) {
        bail!("app {name}: a source needs --repo and either --path or --helm-chart");
    }
    let dest = &app.spec.destination;
    match (dest.server.is_empty(), dest.name.is_empty()) {
        (true, true) => bail!("app {name}: a destination needs --dest-server or --dest-name"),
        (false, false) => bail!(
            "app {name}: the destination can't have both a name ({}) and a server ({})",
            dest.name,
            dest.server
        ),
        _ => Ok(()),
    }
}

/// What Argo CD's API server checks against the cluster: the project exists and permits the
/// sources and the destination (with `permitOnlyProjectScopedClusters`, only a cluster of the
/// project), and the destination cluster is registered.
async fn check_permitted(core: &Core, app: &Application) -> anyhow::Result<()> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let project = project_of(core, app).await?;
    let clusters = core.clusters().await?;
    let cluster = resolve_cluster(&clusters, &app.spec.destination)
        .with_context(|| format!("app {name}: invalid destination"))?;
    // The controller's checks, so what is stored here is what the controller accepts.
    let policy = ferry_appstate::check_project(
        &project,
        app,
        &cluster.server,
        &cluster.name,
        &cluster.project,
    )
    .map_err(|err| anyhow::anyhow!("app {name}: {err}"))?;
    ferry_appstate::check_app_namespace(&policy, app, &core.namespace)
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

/// Reads an Application manifest for `--file`.
fn read_manifest(file: &Path) -> anyhow::Result<Application> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    serde_yaml::from_str(&text).with_context(|| format!("{}: not an Application", file.display()))
}

/// Whether two apps carry the same labels, annotations and finalizers (what `create` compares
/// and `--upsert` replaces besides the spec); absent and empty are the same.
fn same_metadata(a: &Application, b: &Application) -> bool {
    let (a, b) = (&a.metadata, &b.metadata);
    a.labels.clone().unwrap_or_default() == b.labels.clone().unwrap_or_default()
        && a.annotations.clone().unwrap_or_default() == b.annotations.clone().unwrap_or_default()
        && a.finalizers.clone().unwrap_or_default() == b.finalizers.clone().unwrap_or_default()
}

pub async fn create(conn: &Conn, args: CreateArgs) -> anyhow::Result<ExitCode> {
    let mut app = match &args.file {
        Some(file) => read_manifest(file)?,
        None => Application::default(),
    };
    let name = match (&args.name, &app.metadata.name) {
        (Some(given), Some(in_file)) if given != in_file => {
            bail!("app name {given:?} does not match metadata.name {in_file:?} in the manifest")
        }
        (Some(name), _) | (None, Some(name)) => name.clone(),
        (None, None) => bail!("an app name is needed (NAME, or metadata.name in --file)"),
    };
    // `<namespace>/<name>`: an app outside the control namespace (apps in any namespace).
    let (qualifier, plain) = match name.split_once('/') {
        Some((namespace, plain)) => (Some(namespace.to_string()), plain.to_string()),
        None => (None, name.clone()),
    };
    if let (Some(qualifier), Some(given)) = (&qualifier, &app.metadata.namespace)
        && qualifier != given
    {
        bail!("app {name}: the manifest's namespace {given} is not {qualifier}");
    }
    // A server checks the namespace itself; core mode when it writes (Core::app_api).
    let namespace = match conn {
        Conn::Core(core) => Some(
            qualifier
                .or_else(|| app.metadata.namespace.clone())
                .unwrap_or_else(|| core.namespace.clone()),
        ),
        Conn::Server(_) => qualifier.or_else(|| app.metadata.namespace.clone()),
    };
    let name = match &namespace {
        Some(namespace) if namespace != conn.namespace() => format!("{namespace}/{plain}"),
        _ => plain.clone(),
    };
    // Only what a user writes: server-set metadata, status and operation of a manifest saved
    // from a cluster are not carried over.
    app.metadata = ObjectMeta {
        name: Some(plain.clone()),
        namespace,
        labels: app.metadata.labels.take(),
        annotations: app.metadata.annotations.take(),
        finalizers: app.metadata.finalizers.take(),
        ..Default::default()
    };
    app.status = None;
    app.operation = None;
    args.spec.apply(&mut app)?;
    if app.spec.project.is_empty() {
        app.spec.project = DEFAULT_PROJECT.to_string();
    }
    check_spec(&app)?;
    let core = match conn {
        Conn::Core(core) => core,
        Conn::Server(api) => {
            server::apps::create(api, &app, args.upsert).await?;
            println!("application '{name}' created");
            return Ok(ExitCode::SUCCESS);
        }
    };
    core.prepare().await?;
    let (apps, _) = core.app_api(&name).await?;
    check_permitted(core, &app).await?;

    if apps.get_opt(&plain).await?.is_none() {
        apps.create(&PostParams::default(), &app)
            .await
            .with_context(|| format!("creating app {name}"))?;
        println!("application '{name}' created");
        return Ok(ExitCode::SUCCESS);
    }
    let (_, changed) = update_app(core, &name, |existing| {
        let same = existing.spec == app.spec && same_metadata(existing, &app);
        if !same && !args.upsert {
            bail!("app {name} exists with a different spec; use --upsert to replace it");
        }
        existing.spec = app.spec.clone();
        existing.metadata.labels = app.metadata.labels.clone();
        existing.metadata.annotations = app.metadata.annotations.clone();
        existing.metadata.finalizers = app.metadata.finalizers.clone();
        Ok(())
    })
    .await?;
    if changed {
        println!("application '{name}' updated");
    } else {
        println!("application '{name}' unchanged");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn set(conn: &Conn, args: SetArgs) -> anyhow::Result<ExitCode> {
    let core = match conn {
        Conn::Core(core) => core,
        Conn::Server(api) => return set_through_server(api, &args).await,
    };
    let name = &args.name;
    // The checks that need the cluster run on a preview; the flags are applied again to the
    // app as it is when written, so nothing changed in between is lost.
    let mut preview = get_app(conn, name).await?;
    args.spec.apply(&mut preview)?;
    check_spec(&preview)?;
    check_permitted(core, &preview).await?;
    let (_, changed) = update_app(core, name, |app| {
        args.spec.apply(app)?;
        check_spec(app)
    })
    .await?;
    println!(
        "application '{name}' {}",
        if changed { "updated" } else { "unchanged" }
    );
    Ok(ExitCode::SUCCESS)
}

/// Reads the app, applies the flags and writes it back with the resourceVersion read, again
/// when someone else changed it in between.
async fn set_through_server(api: &ApiClient, args: &SetArgs) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    for _ in 0..ATTEMPTS {
        let current = server::apps::get(api, name, None).await?;
        let mut next = current.clone();
        args.spec.apply(&mut next)?;
        check_spec(&next)?;
        if serde_json::to_value(&next)? == serde_json::to_value(&current)? {
            println!("application '{name}' unchanged");
            return Ok(ExitCode::SUCCESS);
        }
        match server::apps::update(api, &next).await {
            Ok(()) => {
                println!("application '{name}' updated");
                return Ok(ExitCode::SUCCESS);
            }
            Err(err) if api_error_is(&err, |e| e.status == reqwest::StatusCode::CONFLICT) => {}
            Err(err) => return Err(err),
        }
    }
    bail!("app {name} kept changing while being updated ({ATTEMPTS} attempts); try again")
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

    fn create(args: &[&str]) -> (CreateArgs, Application) {
        let parsed = Create::try_parse_from([&["create"], args].concat())
            .unwrap()
            .args;
        let mut app = Application::default();
        app.metadata.name = parsed.name.clone();
        parsed.spec.apply(&mut app).unwrap();
        (parsed, app)
    }

    fn apply(app: &mut Application, args: &[&str]) -> anyhow::Result<()> {
        let parsed = Create::try_parse_from([&["create", "x"], args].concat())
            .unwrap()
            .args;
        parsed.spec.apply(app)
    }

    #[test]
    fn create_flags_become_argo_cds_spec() {
        let (args, app) = create(&[
            "guestbook",
            "--repo",
            "https://github.com/argoproj/argocd-example-apps",
            "--path",
            "helm-guestbook",
            "--revision",
            "main",
            "--dest-server",
            "https://kubernetes.default.svc",
            "--dest-namespace",
            "web",
            "--sync-policy",
            "auto",
            "--auto-prune",
            "--self-heal",
            "--sync-option",
            "CreateNamespace=true",
            "--helm-set",
            "replicaCount=2",
            "--helm-set-string",
            "tag=1.0",
            "--values",
            "values-prod.yaml",
            "--label",
            "team=web",
            "--set-finalizer",
            "--upsert",
        ]);
        assert!(args.upsert);
        check_spec(&app).unwrap();
        let json = serde_json::to_value(&app).unwrap();
        assert_eq!(
            json["spec"],
            serde_json::json!({
                "source": {
                    "repoURL": "https://github.com/argoproj/argocd-example-apps",
                    "path": "helm-guestbook",
                    "targetRevision": "main",
                    "helm": {
                        "valueFiles": ["values-prod.yaml"],
                        "parameters": [
                            {"name": "replicaCount", "value": "2"},
                            {"name": "tag", "value": "1.0", "forceString": true}
                        ]
                    }
                },
                "destination": {"server": "https://kubernetes.default.svc", "namespace": "web"},
                "project": "",
                "syncPolicy": {
                    "automated": {"prune": true, "selfHeal": true},
                    "syncOptions": ["CreateNamespace=true"]
                }
            })
        );
        assert_eq!(
            json["metadata"]["labels"],
            serde_json::json!({"team": "web"})
        );
        assert_eq!(
            json["metadata"]["finalizers"],
            serde_json::json!(["resources-finalizer.argocd.argoproj.io"])
        );
    }

    #[test]
    fn set_changes_only_what_is_given() {
        let (_, mut app) = create(&[
            "web",
            "--repo",
            "https://git.example.com/apps",
            "--path",
            "web",
            "--dest-name",
            "prod",
            "--sync-policy",
            "automated",
            "--auto-prune",
            "--sync-option",
            "CreateNamespace=true",
            "--kustomize-image",
            "nginx:1.25",
        ]);
        apply(
            &mut app,
            &[
                "--revision",
                "v2",
                "--kustomize-image",
                "nginx:1.27",
                "--kustomize-image",
                "redis=redis:7",
                "--sync-option",
                "!CreateNamespace=true",
                "--sync-option",
                "PruneLast=true",
                "--auto-prune=false",
                "--dest-server",
                "https://prod:6443",
            ],
        )
        .unwrap();
        let source = app.spec.source.as_ref().unwrap();
        assert_eq!(source.path, "web");
        assert_eq!(source.target_revision, "v2");
        assert_eq!(
            source.kustomize.as_ref().unwrap().images,
            ["nginx:1.27", "redis=redis:7"]
        );
        let policy = app.spec.sync_policy.as_ref().unwrap();
        assert_eq!(policy.sync_options, ["PruneLast=true"]);
        assert!(policy.is_automated() && !policy.automated.as_ref().unwrap().prune);
        // A new server replaces the name: a destination has one or the other.
        assert_eq!(app.spec.destination.server, "https://prod:6443");
        assert_eq!(app.spec.destination.name, "");

        apply(
            &mut app,
            &["--sync-policy", "none", "--sync-option", "!PruneLast=true"],
        )
        .unwrap();
        assert_eq!(app.spec.sync_policy, None);
    }

    #[test]
    fn inconsistent_flags_are_refused_with_the_reason() {
        let mut app = Application::new("web", Default::default());
        let err = apply(&mut app, &["--auto-prune"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "app web: --auto-prune needs automated sync (--sync-policy automated)"
        );
        let err = apply(
            &mut app,
            &[
                "--repo",
                "https://r",
                "--helm-set",
                "a=1",
                "--kustomize-image",
                "x:1",
            ],
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "app web: multiple application source types defined: Kustomize, Helm"
        );

        let mut multi: Application = serde_yaml::from_str(
            "metadata: {name: m}\nspec: {sources: [{repoURL: a, path: x}, {repoURL: b, chart: c}]}",
        )
        .unwrap();
        let err = apply(&mut multi, &["--revision", "v1"])
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "app m has 2 sources; choose the one to change with --source-position"
        );
        apply(&mut multi, &["--revision", "v1", "--source-position", "2"]).unwrap();
        assert_eq!(multi.spec.sources[1].target_revision, "v1");
        assert_eq!(multi.spec.sources[0].target_revision, "");
    }

    #[test]
    fn spec_checks_name_the_missing_part() {
        let (_, app) = create(&["web", "--repo", "https://r", "--dest-namespace", "x"]);
        assert_eq!(
            check_spec(&app).unwrap_err().to_string(),
            "app web: a source needs --repo and either --path or --helm-chart"
        );
        let (_, app) = create(&["web", "--repo", "https://r", "--path", "p"]);
        assert_eq!(
            check_spec(&app).unwrap_err().to_string(),
            "app web: a destination needs --dest-server or --dest-name"
        );
        let (_, app) = create(&[
            "web",
            "--repo",
            "https://charts.example.com",
            "--helm-chart",
            "redis",
            "--dest-name",
            "in-cluster",
            "--dest-server",
            "https://kubernetes.default.svc",
        ]);
        assert!(
            check_spec(&app)
                .unwrap_err()
                .to_string()
                .contains("can't have both a name (in-cluster)")
        );
    }

    #[test]
    fn kustomize_image_names() {
        assert_eq!(image_name("nginx:1.25"), "nginx");
        assert_eq!(image_name("old=new:1"), "old");
        assert_eq!(image_name("nginx@sha256:abc"), "nginx");
        assert_eq!(image_name("nginx"), "nginx");
    }
}
