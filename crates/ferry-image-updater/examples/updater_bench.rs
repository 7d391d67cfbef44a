//! How the image updater scales: `--apps` Applications, each running `--images-per-app`
//! images drawn in turn from `--repos` repositories spread over `--registries` real
//! distribution registries (the first one behind token auth, its credentials in a Secret named
//! by registries.conf). Every repository holds 1.0.0..1.0.4 and three tags the apps' `1.0.x`
//! constraint rejects. Apps are managed by annotation (semver, `argocd` write-back) on a fresh
//! sandbox, and the updater's cycles run in this process, as `run --once` does. Prints the
//! setup time; for a cold cycle, a warm cycle with nothing new, and a cycle after 1.0.5 is
//! pushed to `--new-tags` repositories: wall time, registry requests (per registry and in
//! total) and images updated; and the process's CPU and RSS.
//!
//! cargo run -p ferry-image-updater --example updater_bench -- --apps 200 --repos 500

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use ferry_git::push::Author;
use ferry_image_updater::metrics::Metrics;
use ferry_image_updater::runner::{CycleReport, Runner, Settings};
use ferry_image_updater::templates::DEFAULT_COMMIT_MESSAGE;
use ferry_image_updater::writeback::CommitSettings;
use ferry_registry::{Registries, RegistriesConf, SecretReader};
use ferry_testkit::process::{cpu_seconds, mib, on_fresh_sandbox, status_bytes};
use ferry_testkit::registry::{ManifestFormat, Registry, RegistryOptions, TestImage};
use ferry_types::Application;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

const NAMESPACE: &str = "argocd";
const SANDBOX: &str = "updater-bench";
const USER: &str = "bench";
const PASSWORD: &str = "bench-secret";
/// What every app runs at first; `1.0.x` lets 1.0.1..1.0.4 (and later 1.0.5) through.
const RUNNING: &str = "1.0.0";
const MATCHING: [&str; 5] = ["1.0.0", "1.0.1", "1.0.2", "1.0.3", "1.0.4"];
const OTHERS: [&str; 3] = ["latest", "2.0.0", "1.1.0-rc.1"];
const NEW_TAG: &str = "1.0.5";

#[derive(Parser)]
struct Args {
    /// Applications to create.
    #[arg(long, default_value_t = 200)]
    apps: usize,
    /// Image repositories, spread round-robin over the registries.
    #[arg(long, default_value_t = 500)]
    repos: usize,
    /// Registries (the first one with token auth).
    #[arg(long, default_value_t = 3)]
    registries: usize,
    /// Images per app, taken in turn from the repositories (apps × images above --repos
    /// share repositories).
    #[arg(long, default_value_t = 3)]
    images_per_app: usize,
    /// Repositories that get the new tag before the last cycle.
    #[arg(long, default_value_t = 50)]
    new_tags: usize,
    /// Apps updated at once (the updater's --max-concurrency).
    #[arg(long, default_value_t = 10)]
    max_concurrency: usize,
    /// Requests per second per registry (registries.conf `limit`; upstream's default is 20).
    #[arg(long, default_value_t = ferry_registry::DEFAULT_LIMIT)]
    limit: u32,
    /// Leave the sandbox running afterwards.
    #[arg(long)]
    keep: bool,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    if args.registries == 0 || args.repos == 0 {
        bail!("--registries and --repos must be at least 1");
    }
    on_fresh_sandbox(SANDBOX, args.keep, |client| run(&args, client)).await
}

fn repo_name(repo: usize) -> String {
    format!("team-{}/service-{repo:04}", repo % 10)
}

/// Which repositories app `app` runs.
fn repos_of(args: &Args, app: usize) -> Vec<usize> {
    (0..args.images_per_app)
        .map(|j| (app * args.images_per_app + j) % args.repos)
        .collect()
}

async fn run(args: &Args, client: kube::Client) -> Result<()> {
    let started = Instant::now();
    let registries: Vec<Registry> = (0..args.registries)
        .map(|i| {
            Registry::start(RegistryOptions {
                auth: (i == 0).then_some((USER, PASSWORD)),
                token: i == 0,
                ..RegistryOptions::default()
            })
        })
        .collect::<Result<_>>()?;
    let image = |repo: usize| {
        format!(
            "{}/{}",
            registries[repo % args.registries].host(),
            repo_name(repo)
        )
    };
    let pushes: Vec<(usize, &str)> = (0..args.repos)
        .flat_map(|repo| MATCHING.iter().chain(&OTHERS).map(move |tag| (repo, *tag)))
        .collect();
    push_tags(&registries, args, &pushes).await?;
    println!(
        "{} registries, {} repositories × {} tags pushed {:>9.2?}",
        args.registries,
        args.repos,
        MATCHING.len() + OTHERS.len(),
        started.elapsed()
    );

    let apps_started = Instant::now();
    ferry_runtime::install_crds(&client, "updater-bench").await?;
    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    match Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(e)) if e.code == 409 => {}
        Err(e) => return Err(e.into()),
    }
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "registry-creds", "namespace": NAMESPACE},
        "stringData": {"creds": format!("{USER}:{PASSWORD}")},
    }))?;
    Api::<Secret>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &secret)
        .await?;
    let apps: Api<Application> = Api::namespaced(client.clone(), NAMESPACE);
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let apps = apps.clone();
            let images: Vec<String> = repos_of(args, i).into_iter().map(image).collect();
            async move {
                let list: Vec<String> = images
                    .iter()
                    .enumerate()
                    .map(|(j, image)| format!("img{j}={image}:1.0.x"))
                    .collect();
                let running: Vec<String> =
                    images.iter().map(|i| format!("{i}:{RUNNING}")).collect();
                let app: Application = serde_json::from_value(json!({
                    "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
                    "metadata": {
                        "name": format!("app-{i:04}"),
                        "namespace": NAMESPACE,
                        "annotations": {
                            "argocd-image-updater.argoproj.io/image-list": list.join(","),
                            "argocd-image-updater.argoproj.io/write-back-method": "argocd",
                        },
                    },
                    "spec": {
                        "project": "default",
                        "source": {"repoURL": "https://example.com/config.git",
                                   "path": format!("apps/{i:04}"), "kustomize": {}},
                        "destination": {"server": "https://kubernetes.default.svc",
                                        "namespace": "default"},
                    },
                    "status": {"summary": {"images": running}},
                }))?;
                apps.create(&PostParams::default(), &app).await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    println!(
        "{} apps × {} images created      {:>9.2?}",
        args.apps,
        args.images_per_app,
        apps_started.elapsed()
    );
    println!(
        "setup                             {:>9.2?}",
        started.elapsed()
    );

    let conf = registries_conf(&registries, args.limit);
    let registry_clients = Arc::new(Registries::new(
        &RegistriesConf::parse(&conf)?,
        Some(Arc::new(client.clone()) as Arc<dyn SecretReader>),
    )?);
    let runner = Runner::new(
        client.clone(),
        registry_clients.clone(),
        settings(args),
        Arc::new(Metrics::default()),
    );
    let counter = RequestCounter::new(&registry_clients, &registries)?;
    let rss_before = status_bytes("VmRSS")?;

    let cold = measure("cold cycle", &runner, &counter).await?;
    if cold.updated.len() != args.apps * args.images_per_app {
        bail!(
            "the cold cycle updated {} images, not {}",
            cold.updated.len(),
            args.apps * args.images_per_app
        );
    }
    // What the controller would report once the apps synced: they now run 1.0.4.
    set_running(&apps, args, &image, |_| MATCHING[MATCHING.len() - 1]).await?;

    let warm = measure("warm cycle, nothing new", &runner, &counter).await?;
    if !warm.updated.is_empty() {
        bail!("the warm cycle updated {} images", warm.updated.len());
    }

    let new_tags = args.new_tags.min(args.repos);
    let pushed_at = Instant::now();
    let pushes: Vec<(usize, &str)> = (0..new_tags).map(|repo| (repo, NEW_TAG)).collect();
    push_tags(&registries, args, &pushes).await?;
    println!(
        "{NEW_TAG} pushed to {new_tags} repositories     {:>9.2?}",
        pushed_at.elapsed()
    );
    let fresh = measure(
        &format!("cycle after {new_tags} new tags"),
        &runner,
        &counter,
    )
    .await?;
    let expected: usize = (0..args.apps)
        .map(|app| {
            repos_of(args, app)
                .into_iter()
                .filter(|r| *r < new_tags)
                .count()
        })
        .sum();
    if fresh.updated.len() != expected {
        bail!(
            "after the new tags {} images were updated, not {expected}",
            fresh.updated.len()
        );
    }
    println!(
        "updater RSS before cycles / steady / peak  {} / {} / {}",
        mib(rss_before),
        mib(status_bytes("VmRSS")?),
        mib(status_bytes("VmHWM")?)
    );
    Ok(())
}

/// Pushes `(repository, tag)` pairs, 16 at once, each image built at a time of its own.
async fn push_tags(registries: &[Registry], args: &Args, pushes: &[(usize, &str)]) -> Result<()> {
    let pushers: Vec<_> = registries.iter().map(Registry::pusher).collect();
    futures::stream::iter(pushes.iter().enumerate())
        .map(|(n, (repo, tag))| {
            let pusher = pushers[repo % args.registries].clone();
            async move {
                let created = format!("2026-01-01T{:02}:{:02}:00Z", n / 60 % 24, n % 60);
                let image = TestImage {
                    created: &created,
                    ..TestImage::default()
                };
                pusher
                    .push_image(&repo_name(*repo), tag, &image, ManifestFormat::Oci)
                    .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
}

fn registries_conf(registries: &[Registry], limit: u32) -> String {
    let mut conf = String::from("registries:\n");
    for (i, registry) in registries.iter().enumerate() {
        let credentials = if i == 0 {
            format!(", credentials: 'secret:{NAMESPACE}/registry-creds#creds'")
        } else {
            String::new()
        };
        conf.push_str(&format!(
            "- {{name: registry-{i}, api_url: '{}', prefix: '{}', limit: {limit}{credentials}}}\n",
            registry.api_url(),
            registry.host()
        ));
    }
    conf
}

fn settings(args: &Args) -> Settings {
    Settings {
        namespace: NAMESPACE.into(),
        watch_namespaces: vec![NAMESPACE.into()],
        interval: Duration::from_secs(120),
        max_concurrency: args.max_concurrency,
        dry_run: false,
        commit: CommitSettings {
            author: Author {
                name: "argocd-image-updater".into(),
                email: "noreply@argoproj.io".into(),
            },
            message_template: DEFAULT_COMMIT_MESSAGE.into(),
            control_namespace: NAMESPACE.into(),
            dry_run: false,
        },
        kube_events: true,
    }
}

/// Sets what each app runs (`status.summary.images`), as the controller would after a sync.
async fn set_running(
    apps: &Api<Application>,
    args: &Args,
    image: &(impl Fn(usize) -> String + Sync),
    tag: impl Fn(usize) -> &'static str + Sync,
) -> Result<()> {
    futures::stream::iter(0..args.apps)
        .map(|i| {
            let running: Vec<String> = repos_of(args, i)
                .into_iter()
                .map(|r| format!("{}:{}", image(r), tag(r)))
                .collect();
            async move {
                let patch = json!({"status": {"summary": {"images": running}}});
                apps.patch(
                    &format!("app-{i:04}"),
                    &PatchParams::default(),
                    &Patch::Merge(&patch),
                )
                .await?;
                anyhow::Ok(())
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await
}

/// Requests each registry client has sent, by registry.
struct RequestCounter {
    clients: Vec<Arc<ferry_registry::Registry>>,
}

impl RequestCounter {
    fn new(registries: &Registries, servers: &[Registry]) -> Result<Self> {
        let clients = servers
            .iter()
            .map(|s| registries.for_image(Some(&s.host()), "any"))
            .collect::<Result<_, _>>()?;
        Ok(Self { clients })
    }

    fn snapshot(&self) -> BTreeMap<String, u64> {
        self.clients
            .iter()
            .map(|c| (c.config().name.clone(), c.requests_sent()))
            .collect()
    }
}

/// Runs one cycle and prints its wall time, CPU, registry requests and updates.
async fn measure(what: &str, runner: &Runner, counter: &RequestCounter) -> Result<CycleReport> {
    let before = counter.snapshot();
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    let report = runner.cycle(None).await;
    let wall = started.elapsed();
    let cpu = cpu_seconds()? - cpu_before;
    let after = counter.snapshot();
    let per_registry: Vec<String> = after
        .iter()
        .map(|(label, n)| format!("{label} {}", n - before.get(label).copied().unwrap_or(0)))
        .collect();
    let total: u64 = after.values().sum::<u64>() - before.values().sum::<u64>();
    let apps_updated: BTreeSet<&String> = report.updated.iter().map(|(app, _)| app).collect();
    println!(
        "{what:<34}{wall:>9.2?}  CPU {cpu:.2} s  {} apps, {} images; {} images of {} apps updated, {} errors",
        report.apps,
        report.images,
        report.updated.len(),
        apps_updated.len(),
        report.errors.len()
    );
    println!("  registry requests {total} ({})", per_registry.join(", "));
    if let Some((app, error)) = report.errors.first() {
        bail!("{app}: {error}");
    }
    Ok(report)
}
