//! What evaluating Jsonnet in a worker process costs: a small Jsonnet app (a library import,
//! TLAs and an external variable; a Deployment, a Service and a ConfigMap) rendered with a hard
//! refresh again and again, against the same objects as a YAML directory (checkout and parsing
//! without Jsonnet) and the same evaluation in this process (the worker's own logic, without the
//! process). The worker is this binary started again, as `ferry-controller` and `ferry` do.
//!
//! cargo run --release -p ferry-render --example jsonnet_bench -- 200

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_git::{Credentials, RepoCache};
use ferry_render::{AppContext, JsonnetWorker, RenderConfig, Renderer};
use ferry_testkit::git::GitRepo;
use ferry_types::source::ApplicationSource;

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

const LIB: &str = "{ deployment(name, replicas):: { apiVersion: 'apps/v1', kind: 'Deployment', \
    metadata: { name: name }, spec: { replicas: replicas, selector: { matchLabels: { app: name } }, \
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', \
    image: 'registry.example/web:1.0', ports: [{ containerPort: 80 }] }] } } } },\n\
    service(name):: { apiVersion: 'v1', kind: 'Service', metadata: { name: name }, \
    spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 80 }] } } }\n";

const MAIN: &str = "local k = import 'k.libsonnet';\n\
    function(env, replicas=2) [\n\
      k.deployment(env + '-web', replicas),\n\
      k.service(env + '-web'),\n\
      { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: env + '-settings' },\n\
        data: { region: std.extVar('region'), greeting: 'hello' } },\n\
    ]\n";

const YAML: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: prod-web}\nspec:\n  replicas: 3\n  selector: {matchLabels: {app: prod-web}}\n  template:\n    metadata: {labels: {app: prod-web}}\n    spec:\n      containers: [{name: web, image: 'registry.example/web:1.0', ports: [{containerPort: 80}]}]\n---\napiVersion: v1\nkind: Service\nmetadata: {name: prod-web}\nspec:\n  selector: {app: prod-web}\n  ports: [{port: 80, targetPort: 80}]\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: prod-settings}\ndata: {region: eu, greeting: hello}\n";

fn stats(name: &str, mut times: Vec<Duration>) -> Duration {
    times.sort();
    let median = times[times.len() / 2];
    let p90 = times[times.len() * 9 / 10];
    println!(
        "{name:<44} median {:>8.3} ms   p90 {:>8.3} ms",
        median.as_secs_f64() * 1e3,
        p90.as_secs_f64() * 1e3
    );
    median
}

fn main() -> Result<()> {
    // Renders run Jsonnet in this binary, started again as the worker: it needs no runtime.
    ferry_render::run_jsonnet_worker_if_asked();
    run_main()
}

#[tokio::main]
async fn run_main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(100);

    let repo = GitRepo::new()?;
    repo.write("jsonnet/k.libsonnet", LIB)?;
    repo.write("jsonnet/main.jsonnet", MAIN)?;
    repo.write("yaml/all.yaml", YAML)?;
    repo.commit("apps")?;
    let dirs = tempfile::tempdir()?;
    let git = Arc::new(RepoCache::new(
        dirs.path().join("git"),
        Credentials::default(),
    ));
    let renderer = Renderer::new(
        git,
        RenderConfig {
            work_dir: dirs.path().join("work"),
            jsonnet_worker: JsonnetWorker::this_executable(),
            ..RenderConfig::default()
        },
    );
    let app = AppContext {
        name: "bench".into(),
        namespace: "default".into(),
        hard_refresh: true,
        ..AppContext::default()
    };
    let source = |path: &str| -> Result<Vec<ApplicationSource>> {
        Ok(serde_yaml::from_str(&format!(
            "- repoURL: {}\n  path: {path}\n  directory:\n    jsonnet:\n      tlas: [{{name: env, value: prod}}, {{name: replicas, value: '3', code: true}}]\n      extVars: [{{name: region, value: eu}}]\n",
            repo.file_url()
        ))?)
    };
    let (jsonnet, yaml) = (source("jsonnet")?, source("yaml")?);
    // Same objects either way (and a warm mirror).
    let a = renderer.render(&app, &jsonnet).await?.objects;
    let b = renderer.render(&app, &yaml).await?.objects;
    if a != b {
        return Err(format!("the Jsonnet and YAML apps differ:\n{a:#?}\n{b:#?}").into());
    }

    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        renderer.render(&app, &yaml).await?;
        times.push(started.elapsed());
    }
    let yaml_render = stats("render, YAML directory", times);

    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        renderer.render(&app, &jsonnet).await?;
        times.push(started.elapsed());
    }
    let worker_render = stats("render, Jsonnet in a worker process", times);

    // The same evaluation in this process, as renders did before the worker.
    let checkout = tempfile::tempdir()?;
    let root = checkout.path().canonicalize()?;
    std::fs::create_dir_all(root.join("jsonnet"))?;
    std::fs::write(root.join("jsonnet/k.libsonnet"), LIB)?;
    std::fs::write(root.join("jsonnet/main.jsonnet"), MAIN)?;
    let request = serde_json::to_vec(&serde_json::json!({
        "root": root, "appDir": root.join("jsonnet"), "file": root.join("jsonnet/main.jsonnet"),
        "jsonnet": jsonnet[0].directory.as_ref().unwrap().jsonnet, "maxFileSize": 1 << 20,
    }))?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let reply = ferry_render::jsonnet_worker_answer(&request)?;
        times.push(started.elapsed());
        if !reply.starts_with(b"{\"value\"") {
            return Err(String::from_utf8_lossy(&reply).into_owned().into());
        }
    }
    let in_process = stats("evaluation alone, in this process", times);

    let worker = worker_render.saturating_sub(yaml_render);
    println!(
        "Jsonnet's share of a render: {:.2} ms in a worker, {:.2} ms in-process; the process costs {:.2} ms",
        worker.as_secs_f64() * 1e3,
        in_process.as_secs_f64() * 1e3,
        worker.saturating_sub(in_process).as_secs_f64() * 1e3
    );
    let exe = std::fs::metadata(std::env::current_exe()?)?.len();
    println!(
        "worker binary: {} ({} MiB)",
        std::env::current_exe()?.display(),
        exe >> 20
    );
    Ok(())
}
