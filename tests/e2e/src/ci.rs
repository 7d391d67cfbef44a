//! What a CI pipeline on the real node needs: the images its workflow pods run, pushed to the
//! `real` sandbox's registry, and `ferry-workflow-controller` as a process.
//!
//! The images, built without Docker: the workflow executor (`scripts/executor-image`), a base
//! image for applications (the node's busybox), and the CI tools image — busybox with `crane`
//! (a daemonless image builder: it appends layers to a base image in a registry and pushes the
//! result) and the `ferry` CLI (`ferry ci set-image`). The tools image is tagged by the hash of
//! what it holds and built only when the registry lacks that tag.

use std::fs::{self, File};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ferry_sandbox::registry::RegistryInfo;
use ferry_testkit::kube::TestContext;
use ferry_testkit::real_node;
use ferry_testkit::server::workspace_binary;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use serde_json::json;
use tempfile::TempDir;

use crate::Story;
use crate::helm::repo_root;

/// Changes whenever the tools image's recipe below changes: part of its tag.
const TOOLS_RECIPE: &str = "busybox + crane + ferry (stripped) + its shared libraries, HOME=/tmp";

/// The images of a CI workflow, in the registry.
pub struct CiImages {
    /// `ferry-exec`, every workflow pod's init container.
    pub executor: String,
    /// busybox, `crane` and `ferry`.
    pub tools: String,
    /// The base image applications are built on (busybox).
    pub base: String,
}

impl CiImages {
    /// Pushes (or finds up to date) the three images in `registry`.
    pub fn push(registry: &RegistryInfo) -> Result<Self> {
        let certs = tempfile::Builder::new()
            .prefix("ferry-ci-certs-")
            .tempdir()?;
        // skopeo and buildah trust the *.crt of a cert dir.
        fs::copy(&registry.ca, certs.path().join("ca.crt"))?;
        let started = Instant::now();
        let busybox = ferry_sandbox::real_node::busybox_archive()?;
        let base = format!("{}/ferry-ci/busybox:sandbox", registry.address);
        // Blobs the registry has are not sent again.
        run(skopeo(registry, "copy", "--dest-cert-dir", certs.path())
            .arg("-q")
            .arg(format!("oci-archive:{}", busybox.display()))
            .arg(format!("docker://{base}")))?;
        let based = started.elapsed();
        let executor = executor_image()?;
        let executed = started.elapsed();
        let tools = tools_image(registry, certs.path(), &busybox)?;
        println!(
            "CI images: base {:.1} s, executor (build and push) {:.1} s, tools {:.1} s",
            based.as_secs_f64(),
            (executed - based).as_secs_f64(),
            (started.elapsed() - executed).as_secs_f64(),
        );
        Ok(Self {
            executor,
            tools,
            base,
        })
    }
}

/// `scripts/executor-image --profile debug --push` into the `real` sandbox's registry: the
/// image's reference.
pub fn executor_image() -> Result<String> {
    let out = run(Command::new(repo_root().join("scripts/executor-image"))
        .args(["--profile", "debug", "--push"])
        .args(["--sandbox", real_node::SANDBOX]))?;
    Ok(out.lines().last().unwrap_or_default().to_string())
}

/// The tools image, tagged by the hash of the recipe, crane, ferry and its libraries.
fn tools_image(registry: &RegistryInfo, certs: &Path, busybox: &Path) -> Result<String> {
    let crane = ferry_sandbox::toolchain::bin_dir().join("crane");
    if !crane.is_file() {
        bail!("{} is missing: run scripts/toolchain", crane.display());
    }
    let ferry = workspace_binary("ferry")?;
    let libraries = shared_libraries(&ferry)?;
    let mut inputs = vec![crane.clone(), ferry.clone(), busybox.to_path_buf()];
    inputs.extend(libraries.iter().cloned());
    let sums = run(Command::new("sha256sum").args(&inputs))?;
    let mut hasher = DefaultHasher::new();
    (TOOLS_RECIPE, sums).hash(&mut hasher);
    let image = format!(
        "{}/ferry-ci/tools:{:016x}",
        registry.address,
        hasher.finish()
    );
    let found = skopeo(registry, "inspect", "--cert-dir", certs)
        .arg("--raw")
        .arg(format!("docker://{image}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if found.success() {
        return Ok(image);
    }

    let work = tempfile::Builder::new()
        .prefix("ferry-ci-tools-")
        .tempdir()?;
    let stripped = work.path().join("ferry");
    run(Command::new("strip")
        .args(["--strip-all", "-o"])
        .arg(&stripped)
        .arg(&ferry))?;
    let buildah = Buildah { work: &work };
    let container = buildah.run(|c| {
        c.arg("from")
            .arg(format!("oci-archive:{}", busybox.display()))
    })?;
    let container = container.trim();
    buildah.run(|c| c.arg("copy").arg(container).arg(&crane).arg("/bin/crane"))?;
    buildah.run(|c| {
        c.arg("copy")
            .arg(container)
            .arg(&stripped)
            .arg("/bin/ferry")
    })?;
    for library in &libraries {
        // The file itself at the path the binary asks for, not a symlink to it.
        let real = fs::canonicalize(library)?;
        buildah.run(|c| c.arg("copy").arg(container).arg(&real).arg(library))?;
    }
    buildah.run(|c| {
        c.args(["config", "--env", "HOME=/tmp", "--env", "PATH=/bin"])
            .arg(container)
    })?;
    buildah.run(|c| c.args(["commit", "-q", "--rm", container, "ferry-ci-tools"]))?;
    buildah.run(|c| {
        c.args(["push", "-q", "--authfile"])
            .arg(&registry.auth_config)
            .arg("--cert-dir")
            .arg(certs)
            .arg("ferry-ci-tools")
            .arg(format!("docker://{image}"))
    })?;
    Ok(image)
}

/// The shared libraries `binary` loads (ldd), the dynamic loader among them.
fn shared_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let listed = run(Command::new("ldd").arg(binary))?;
    Ok(listed
        .lines()
        .filter_map(|line| {
            // "libz.so.1 => /lib/x86_64-linux-gnu/libz.so.1 (0x...)" or "/lib64/ld-linux... (0x...)"
            let path = match line.split_once("=>") {
                Some((_, right)) => right.split_whitespace().next()?,
                None => line.split_whitespace().next()?,
            };
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The Deployment `pipeline` of `image` on the real node, pulling with the registry's login
/// (the pull Secret `sandbox-registry`); its command is the image's entrypoint.
pub fn pipeline_deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: pipeline
spec:
  replicas: 1
  selector:
    matchLabels: {{app: pipeline}}
  template:
    metadata:
      labels: {{app: pipeline}}
    spec:
{placement}      terminationGracePeriodSeconds: 1
      imagePullSecrets: [{{name: sandbox-registry}}]
      containers:
      - name: pipeline
        image: {image}
",
        placement = real_node::placement_yaml(6),
    )
}

/// The registry's login as the pull Secret `sandbox-registry` (its auth config is a
/// `.dockerconfigjson`).
pub fn registry_pull_secret(registry: &RegistryInfo) -> Result<Secret> {
    let auth = fs::read(&registry.auth_config)?;
    Ok(serde_json::from_value(json!({
        "metadata": {"name": "sandbox-registry"},
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": ByteString(auth)},
    }))?)
}

/// `ferry-workflow-controller` for a story's namespace with the executor image; killed when
/// dropped.
pub struct WorkflowController {
    child: Child,
    log: PathBuf,
    _work: TempDir,
}

impl WorkflowController {
    pub fn start(story: &Story, executor_image: &str) -> Result<Self> {
        Self::for_namespace(&story.ctx, executor_image)
    }

    /// [`WorkflowController::start`] for a test context's namespace (a benchmark's).
    pub fn for_namespace(ctx: &TestContext, executor_image: &str) -> Result<Self> {
        let work = tempfile::Builder::new()
            .prefix("ferry-workflow-controller-")
            .tempdir()?;
        let log = work.path().join("workflow-controller.log");
        let out = File::create(&log)?;
        let child = Command::new(workspace_binary("ferry-workflow-controller")?)
            .args(["--namespace", ctx.namespace()])
            .arg("--kubeconfig")
            .arg(ctx.kubeconfig())
            .args(["--executor-image", executor_image])
            .args(["--metrics-listen", "127.0.0.1:0"])
            .env("FERRY_LOG", "info,kube=warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting ferry-workflow-controller")?;
        Ok(Self {
            child,
            log,
            _work: work,
        })
    }

    pub fn log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process's id, for its CPU and memory.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for WorkflowController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// skopeo `verb` with the registry's login and CA (`cert_flag` names the CA directory's flag of
/// that verb).
fn skopeo(registry: &RegistryInfo, verb: &str, cert_flag: &str, certs: &Path) -> Command {
    let mut command = Command::new("skopeo");
    command
        .args([verb, "--authfile"])
        .arg(&registry.auth_config)
        .arg(cert_flag)
        .arg(certs)
        .stdin(Stdio::null());
    command
}

/// buildah with its own storage (vfs: no mounts, any filesystem) in a work directory.
struct Buildah<'a> {
    work: &'a TempDir,
}

impl Buildah<'_> {
    fn run(&self, args: impl FnOnce(&mut Command) -> &mut Command) -> Result<String> {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(self.work.path().join("storage"))
            .arg("--runroot")
            .arg(self.work.path().join("run"))
            .args(["--storage-driver", "vfs"]);
        run(args(&mut command))
    }
}

/// Runs a command to success; its stdout.
fn run(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!(
            "{command:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8(out.stdout)?)
}
