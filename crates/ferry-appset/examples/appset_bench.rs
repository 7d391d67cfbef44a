//! How the ApplicationSet controller scales: one git-directories ApplicationSet over `--apps`
//! directories, on a fresh sandbox, with the controller running in this process. Prints the
//! time to generate the Applications (cold and warm Git mirror; and the same template over a
//! list generator, the rendering's share), the time from creating the
//! ApplicationSet until every Application exists, and the time from a commit adding one
//! directory until its Application exists (the generator polls every `--requeue` seconds).
//!
//! cargo run -p ferry-appset --example appset_bench -- --apps 1000

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use clap::Parser;
use ferry_appset::controller::{self, Settings};
use ferry_appset::generators::{GitSource, Sources};
use ferry_git::{Credentials, RepoCache};
use ferry_testkit::git::GitRepo;
use ferry_testkit::process::on_fresh_sandbox;
use ferry_types::{Application, ApplicationSet};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, PostParams};
use serde_json::json;

const NAMESPACE: &str = "argocd";

#[derive(Parser)]
struct Args {
    /// Directories, so Applications.
    #[arg(long, default_value_t = 1000)]
    apps: usize,
    /// The git generator's requeueAfterSeconds.
    #[arg(long, default_value_t = 1)]
    requeue: i64,
    /// Give up after this many seconds waiting for a phase.
    #[arg(long, default_value_t = 1800)]
    timeout: u64,
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = Args::parse();
    on_fresh_sandbox("appset-bench", false, |client| run(&args, client)).await
}

fn write_dir(repo: &GitRepo, i: usize) -> Result<()> {
    repo.write(
        &format!("apps/app-{i:05}/configmap.yaml"),
        format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\n"),
    )
}

async fn run(args: &Args, client: kube::Client) -> Result<()> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    namespaces
        .create(&PostParams::default(), &namespace)
        .await?;
    ferry_runtime::install_crds(&client, "appset-bench").await?;

    let repo = GitRepo::new()?;
    for i in 0..args.apps {
        write_dir(&repo, i)?;
    }
    repo.commit("directories")?;
    let appset: ApplicationSet = serde_json::from_value(json!({
        "metadata": {"name": "bench", "namespace": NAMESPACE},
        "spec": {
            "goTemplate": true,
            "generators": [{"git": {
                "repoURL": repo.file_url(), "revision": "HEAD",
                "requeueAfterSeconds": args.requeue,
                "directories": [{"path": "apps/*"}],
            }}],
            "template": {
                "metadata": {"name": "{{.path.basename}}"},
                "spec": {
                    "project": "default",
                    "source": {"repoURL": repo.file_url(), "targetRevision": "HEAD", "path": "{{.path.path}}"},
                    "destination": {"server": "https://kubernetes.default.svc", "namespace": "{{.path.basename}}"},
                },
            },
            "syncPolicy": {"preserveResourcesOnDeletion": true},
        },
    }))?;

    let work = tempfile::tempdir()?;
    let git = GitSource {
        cache: RepoCache::new(work.path().join("generate"), Credentials::new()),
        max_checkout_bytes: None,
    };
    let sources = Sources {
        git: &git,
        cluster_secrets: &[],
        kube: None,
        scm: &ferry_appset::generators::ScmSettings::default(),
    };
    for round in ["cold", "warm"] {
        let start = Instant::now();
        let apps = ferry_appset::generate::applications(&appset, &sources)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!(
            "generate {} apps ({round} mirror): {:.2} s",
            apps.len(),
            start.elapsed().as_secs_f64()
        );
    }

    // The same template over a list generator: the templates' share of the time.
    let mut listed = appset.clone();
    let elements: Vec<_> = (0..args.apps)
        .map(|i| json!({"path": {"path": format!("apps/app-{i:05}"), "basename": format!("app-{i:05}")}}))
        .collect();
    listed.spec.generators = serde_json::from_value(json!([{"list": {"elements": elements}}]))?;
    let start = Instant::now();
    let rendered = ferry_appset::generate::applications(&listed, &sources)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "render {} apps from a list generator: {:.2} s",
        rendered.len(),
        start.elapsed().as_secs_f64()
    );

    let settings = Settings {
        namespace: NAMESPACE.into(),
        git_root: work.path().join("git"),
        max_repo_size: None,
        concurrency: 10,
        progressive_syncs: false,
        scm: Default::default(),
        applicationset_namespaces: Vec::new(),
        policy: Default::default(),
        policy_override: true,
    };
    tokio::spawn(controller::run(
        client.clone(),
        settings,
        std::future::pending(),
    ));
    let apps: Api<Application> = Api::namespaced(client.clone(), NAMESPACE);
    let appsets: Api<ApplicationSet> = Api::namespaced(client.clone(), NAMESPACE);
    let start = Instant::now();
    appsets.create(&PostParams::default(), &appset).await?;
    wait_count(&apps, args.apps, args.timeout).await?;
    println!(
        "create the ApplicationSet -> {} Applications exist: {:.1} s",
        args.apps,
        start.elapsed().as_secs_f64()
    );

    write_dir(&repo, args.apps)?;
    let start = Instant::now();
    repo.commit("one more")?;
    wait_count(&apps, args.apps + 1, args.timeout).await?;
    println!(
        "commit of one more directory -> its Application exists: {:.1} s (requeueAfterSeconds {})",
        start.elapsed().as_secs_f64(),
        args.requeue
    );
    Ok(())
}

async fn wait_count(apps: &Api<Application>, count: usize, timeout: u64) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let listed = apps
            .list_metadata(&ListParams::default())
            .await?
            .items
            .len();
        if listed >= count {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{listed} of {count} Applications after {timeout} s");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
