//! The whole image pipeline, for real (issue 12): a commit to an application repository is built
//! into an image without Docker (buildah, from scratch with Debian's static busybox) and pushed
//! to the sandbox registry over TLS with its CA and the registry's login; `ferry-image-updater`
//! sees the new tag its allow-tags regexp and semver constraint accept, writes it back to the
//! configuration repository's kustomization with the repository's credentials, ferry syncs, and
//! the real node pulls and runs it: the pod's log says the new version. Tags the regexp or the
//! constraint refuse change nothing, and with the registry's login wrong or the registry
//! unreachable nothing is written back and an Event names the registry and the cause.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use ferry_e2e::ci::{pipeline_deployment, registry_pull_secret};
use ferry_e2e::pods::running_pod_says;
use ferry_e2e::{Story, is};
use ferry_sandbox::Sandbox;
use ferry_sandbox::registry::{Registry, RegistryInfo};
use ferry_testkit::git::{GitRepo, HttpServer};
use ferry_testkit::real_node;
use ferry_testkit::server::workspace_binary;
use ferry_types::Application;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::core::v1::{Event, Secret};
use kube::api::{ListParams, PostParams};
use serde_json::json;
use tempfile::TempDir;

const ANNOTATION: &str = "argocd-image-updater.argoproj.io";
/// The configuration repository's path of the app.
const CONFIG_PATH: &str = "pipeline";
const KUSTOMIZATION: &str = "pipeline/kustomization.yaml";
/// The Application's semver constraint and allow-tags: releases of 1.x only.
const CONSTRAINT: &str = "^1.0";
const ALLOW_TAGS: &str = r"regexp:^v?[0-9]+\.[0-9]+\.[0-9]+$";
/// Who the updater commits as, and its commit message template (Go template, as upstream).
const AUTHOR: &str = "ferry image updater <image-updater@ferry.invalid>";
const MESSAGE_TEMPLATE: &str = "deploy: {{ .AppName }}{{ range .AppChanges }} runs {{ .Image }}:{{ .NewTag }} (was {{ .OldTag }}){{ end }}\n";

#[tokio::test]
async fn a_commit_to_the_app_repo_runs_on_the_real_node_through_the_image_updater() -> Result<()> {
    let mut story = Story::on_real_node().await?;
    let namespace = story.namespace().to_string();
    let registry = Registry::of(&Sandbox::named(real_node::SANDBOX)?).up()?;
    let image = format!("{}/pipeline-{namespace}", registry.address);

    // The application repository: a tiny program that prints its version, and CI's first build.
    let app_repo = GitRepo::new()?;
    app_repo.write("run.sh", PROGRAM)?;
    app_repo.write("VERSION", "1.0.0\n")?;
    app_repo.commit("pipeline 1.0.0")?;
    let ci = Ci::new(&registry, &image)?;
    ci.build_and_push(&app_repo, &[])?;

    // The configuration repository (Kustomize) behind a Git server with basic auth, its
    // credentials as Argo CD keeps them, and the registry's login as the pods' pull Secret.
    let config = GitRepo::new()?;
    config.write(KUSTOMIZATION, kustomization(&image))?;
    config.write("pipeline/deployment.yaml", pipeline_deployment(&image))?;
    config.write("README.md", "The pipeline's configuration.\n")?;
    config.commit("pipeline at 1.0.0")?;
    let git = HttpServer::start(&config, Some(("git", "config-s3cret")))?;
    let mut repo = RepoSecret::new(RepoSecretKind::Repository, &git.url());
    repo.username = Some("git".into());
    repo.password = Some("config-s3cret".into());
    create_secret(&story, repo.to_secret(&namespace)).await?;
    create_secret(&story, registry_pull_secret(&registry)?).await?;

    // The Application, with the Image Updater's annotations.
    let app = story.app_name("pipeline");
    create_app(&story, &app, &git.url(), &image).await?;
    story.start_controller()?;
    story
        .wait_app(&app, "Synced and Healthy at 1.0.0", |a| {
            is::synced_and_healthy(a) && runs(a, &format!("{image}:1.0.0"))
        })
        .await?;
    let node = real_node::node_name()?;
    story
        .eventually("the pod says 1.0.0", || async {
            Ok(running_pod_says(&story.ctx.api(), "pipeline", &node).await? == "pipeline 1.0.0")
        })
        .await?;

    // A commit to the application repository; CI builds it and pushes 1.1.0, and beside it tags
    // the allow-tags regexp refuses (1.2.0-rc1, latest) and one outside the semver constraint.
    let updater = Updater::new(&story, &registry)?;
    app_repo.write("VERSION", "1.1.0\n")?;
    let committed = Instant::now();
    app_repo.commit("pipeline 1.1.0")?;
    ci.build_and_push(&app_repo, &["1.2.0-rc1", "latest", "2.0.0"])?;
    let pushed = committed.elapsed();

    // One cycle of the updater: 1.1.0, written back to the kustomization only.
    let before = bare_git(&config, &["rev-parse", "main"])?;
    updater.cycle(&updater.good)?;
    let cycled = committed.elapsed();
    let head = bare_git(&config, &["rev-parse", "main"])?;
    assert_ne!(head, before, "no write-back");
    assert_eq!(
        bare_git(&config, &["show", "--name-only", "--format=", &head])?,
        KUSTOMIZATION
    );
    assert_eq!(
        bare_git(&config, &["log", "-1", "--format=%an <%ae>%n%B", &head])?,
        format!("{AUTHOR}\ndeploy: {app} runs {image}:1.1.0 (was 1.0.0)")
    );
    let written = bare_git(&config, &["show", &format!("main:{KUSTOMIZATION}")])?;
    assert_eq!(
        written.trim_end(),
        kustomization(&image)
            .replace("newTag: 1.0.0", "newTag: 1.1.0")
            .trim_end(),
        "the kustomization's comments and layout are kept"
    );

    // ferry syncs the write-back; the real node pulls 1.1.0 and runs it.
    story
        .wait_app(&app, "Synced at the write-back", |a| {
            is::synced(a) && is::at_revision(&head)(a)
        })
        .await?;
    let synced = committed.elapsed();
    story
        .wait_app(&app, "Synced and Healthy at the write-back", |a| {
            is::synced_and_healthy(a) && is::at_revision(&head)(a)
        })
        .await?;
    story
        .eventually("the new pod says 1.1.0", || async {
            Ok(running_pod_says(&story.ctx.api(), "pipeline", &node).await? == "pipeline 1.1.0")
        })
        .await?;
    let running = committed.elapsed();
    println!(
        "commit -> 1.1.0 running on the real node: {:.1} s (build and push {:.1} s, \
         image updater cycle and write-back {:.1} s, write-back synced {:.1} s, \
         rollout until the new pod logs {:.1} s)",
        running.as_secs_f64(),
        pushed.as_secs_f64(),
        (cycled - pushed).as_secs_f64(),
        (synced - cycled).as_secs_f64(),
        (running - synced).as_secs_f64(),
    );

    // Nothing newer that matches: another cycle changes nothing, and `ferry-image-updater test`
    // tells each tag's fate.
    updater.cycle(&updater.good)?;
    assert_eq!(bare_git(&config, &["rev-parse", "main"])?, head);
    let fates = updater.test(&image)?;
    for (tag, fate) in [
        ("1.1.0", "chosen"),
        ("1.2.0-rc1", "not matched by allow-tags"),
        ("latest", "not matched by allow-tags"),
        ("2.0.0", "outside the version constraint"),
    ] {
        assert!(
            fates
                .lines()
                .any(|l| l.split_whitespace().next() == Some(tag) && l.ends_with(fate)),
            "{tag}: {fate}\n{fates}"
        );
    }

    // CI pushes 1.2.0. With a wrong login, or the registry unreachable (registries.conf pointing
    // its API at a closed port: the shared registry keeps serving the other stories), nothing is
    // written back, and an Event on the Application names the registry and the cause.
    ci.push_again("1.1.0", "1.2.0")?;
    let wrong: Secret = serde_json::from_value(json!({
        "metadata": {"name": "wrong-registry-login"},
        "stringData": {"creds": "ferry:not-the-password"},
    }))?;
    create_secret(&story, wrong).await?;
    let failed = updater.cycle_failing(&updater.wrong_login)?;
    assert!(failed.contains("rejected (401 Unauthorized)"), "{failed}");
    assert_eq!(bare_git(&config, &["rev-parse", "main"])?, head);
    let events = registry_errors(&story, &app).await?;
    assert!(
        events
            .iter()
            .any(|e| e.contains("registry sandbox") && e.contains("rejected (401 Unauthorized)")),
        "{events:?}"
    );
    let failed = updater.cycle_failing(&updater.unreachable)?;
    assert!(failed.contains("Connection refused"), "{failed}");
    assert_eq!(bare_git(&config, &["rev-parse", "main"])?, head);
    let events = registry_errors(&story, &app).await?;
    assert!(
        events
            .iter()
            .any(|e| e.contains("registry sandbox") && e.contains("Connection refused")),
        "{events:?}"
    );
    let app_now = story.app(&app).await?;
    assert!(runs(&app_now, &format!("{image}:1.1.0")), "{app_now:?}");

    // With the right login again, 1.2.0 is written back.
    updater.cycle(&updater.good)?;
    let written = bare_git(&config, &["show", &format!("main:{KUSTOMIZATION}")])?;
    assert!(written.contains("newTag: 1.2.0"), "{written}");
    Ok(())
}

/// The application's program: prints its version (the repository's VERSION) every few seconds.
const PROGRAM: &str = "#!/bin/sh
# Says which version runs, again and again.
while true; do
  echo \"pipeline $(cat /app/VERSION)\"
  sleep 5
done
";

fn kustomization(image: &str) -> String {
    format!(
        "# The pipeline's configuration. The image updater writes the tag below.
resources:
  - deployment.yaml
images:
  - name: {image} # built by CI from the app repository
    newTag: 1.0.0
"
    )
}

/// The Application of the configuration repository, automated, with the Image Updater's
/// annotations: an alias with a semver constraint, allow-tags, git write-back to the
/// kustomization.
async fn create_app(story: &Story, name: &str, repo: &str, image: &str) -> Result<()> {
    let app: Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {
            "name": name,
            "annotations": {
                format!("{ANNOTATION}/image-list"): format!("pipeline={image}:{CONSTRAINT}"),
                format!("{ANNOTATION}/pipeline.update-strategy"): "semver",
                format!("{ANNOTATION}/pipeline.allow-tags"): ALLOW_TAGS,
                format!("{ANNOTATION}/write-back-method"): "git",
                format!("{ANNOTATION}/write-back-target"): "kustomization",
                format!("{ANNOTATION}/git-branch"): "main",
            },
        },
        "spec": {
            "project": "default",
            "source": {"repoURL": repo, "path": CONFIG_PATH, "targetRevision": "main"},
            "destination": {
                "server": "https://kubernetes.default.svc",
                "namespace": story.namespace(),
            },
            "syncPolicy": {"automated": {}},
        },
    }))?;
    story
        .ctx
        .api::<Application>()
        .create(&PostParams::default(), &app)
        .await?;
    Ok(())
}

/// Whether the app's status reports `image` among its images.
fn runs(app: &Application, image: &str) -> bool {
    let status = app.status.as_ref();
    status.is_some_and(|s| s.summary.images.iter().any(|i| i == image))
}

async fn create_secret(story: &Story, secret: Secret) -> Result<()> {
    story
        .ctx
        .api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await?;
    Ok(())
}

/// The CI job: checks out the app repository's head, builds its image with buildah (from
/// scratch: busybox and the program) and pushes it as the VERSION it says, with the registry's
/// CA and login.
struct Ci {
    work: TempDir,
    image: String,
    auth_file: PathBuf,
}

impl Ci {
    fn new(registry: &RegistryInfo, image: &str) -> Result<Self> {
        let work = tempfile::Builder::new().prefix("ferry-ci-").tempdir()?;
        // buildah trusts the CA certificates (*.crt) of its --cert-dir.
        fs::create_dir(work.path().join("certs"))?;
        fs::copy(&registry.ca, work.path().join("certs/ca.crt"))?;
        Ok(Self {
            auth_file: registry.auth_config.clone(),
            image: image.to_string(),
            work,
        })
    }

    fn build_and_push(&self, app_repo: &GitRepo, more_tags: &[&str]) -> Result<()> {
        let checkout = self.work.path().join("checkout");
        let _ = fs::remove_dir_all(&checkout);
        run(Command::new("git")
            .args(["clone", "-q"])
            .arg(app_repo.bare_path())
            .arg(&checkout))?;
        let version = fs::read_to_string(checkout.join("VERSION"))?
            .trim()
            .to_string();

        let rootfs = self.work.path().join("rootfs");
        let _ = fs::remove_dir_all(&rootfs);
        fs::create_dir_all(rootfs.join("bin"))?;
        fs::create_dir_all(rootfs.join("app"))?;
        fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .context("/bin/busybox (Debian package busybox-static)")?;
        for applet in ["sh", "cat", "sleep"] {
            std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(applet))?;
        }
        for file in ["run.sh", "VERSION"] {
            fs::copy(checkout.join(file), rootfs.join("app").join(file))?;
        }

        let container = run(self.buildah().args(["from", "scratch"]))?;
        let container = container.trim();
        run(self
            .buildah()
            .arg("copy")
            .arg(container)
            .arg(format!("{}/", rootfs.display()))
            .arg("/"))?;
        run(self
            .buildah()
            .arg("config")
            .args(["--entrypoint", r#"["/bin/sh", "/app/run.sh"]"#])
            .args(["--env", "PATH=/bin"])
            .args([
                "--label",
                &format!("org.opencontainers.image.version={version}"),
            ])
            .arg(container))?;
        let local = format!("pipeline:{version}");
        run(self
            .buildah()
            .args(["commit", "-q", "--rm", container, &local]))?;
        self.push(&local, &version)?;
        for tag in more_tags {
            self.push(&local, tag)?;
        }
        Ok(())
    }

    /// Pushes the local build of `version` once more, as `tag`.
    fn push_again(&self, version: &str, tag: &str) -> Result<()> {
        self.push(&format!("pipeline:{version}"), tag)
    }

    fn push(&self, local: &str, tag: &str) -> Result<()> {
        run(self
            .buildah()
            .args(["push", "-q", "--authfile"])
            .arg(&self.auth_file)
            .arg("--cert-dir")
            .arg(self.work.path().join("certs"))
            .arg(local)
            .arg(format!("docker://{}:{tag}", self.image)))
        .map(drop)
    }

    /// buildah with its own storage (vfs: no mounts, any filesystem).
    fn buildah(&self) -> Command {
        let mut command = Command::new("buildah");
        command
            .arg("--root")
            .arg(self.work.path().join("storage"))
            .arg("--runroot")
            .arg(self.work.path().join("run"))
            .args(["--storage-driver", "vfs"]);
        command
    }
}

/// `ferry-image-updater run --once` for the story's namespace, with three registries.conf:
/// the sandbox registry with its CA and the pull Secret's login, the same with a wrong login
/// (`secret:`), and one whose API is unreachable.
struct Updater {
    binary: PathBuf,
    kubeconfig: PathBuf,
    namespace: String,
    work: TempDir,
    good: PathBuf,
    wrong_login: PathBuf,
    unreachable: PathBuf,
}

impl Updater {
    fn new(story: &Story, registry: &RegistryInfo) -> Result<Self> {
        let namespace = story.namespace().to_string();
        let work = tempfile::Builder::new()
            .prefix("ferry-updater-")
            .tempdir()?;
        let conf = |name: &str, api_url: &str, credentials: &str| -> Result<PathBuf> {
            let path = work.path().join(name);
            fs::write(
                &path,
                format!(
                    "registries:
- name: sandbox
  api_url: {api_url}
  prefix: {prefix}
  ca_file: {ca}
  credentials: {credentials}
",
                    prefix = registry.address,
                    ca = registry.ca.display(),
                ),
            )?;
            Ok(path)
        };
        let api_url = format!("https://{}", registry.address);
        let good = conf(
            "good.conf",
            &api_url,
            &format!("pullsecret:{namespace}/sandbox-registry"),
        )?;
        let wrong_login = conf(
            "wrong-login.conf",
            &api_url,
            &format!("secret:{namespace}/wrong-registry-login#creds"),
        )?;
        let closed = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let unreachable = conf(
            "unreachable.conf",
            &format!("https://127.0.0.1:{closed}"),
            &format!("pullsecret:{namespace}/sandbox-registry"),
        )?;
        fs::write(work.path().join("commit.template"), MESSAGE_TEMPLATE)?;
        Ok(Self {
            binary: workspace_binary("ferry-image-updater")?,
            kubeconfig: story.ctx.kubeconfig().to_path_buf(),
            namespace,
            work,
            good,
            wrong_login,
            unreachable,
        })
    }

    fn command(&self, conf: &Path) -> Command {
        let (name, email) = AUTHOR.split_once(" <").unwrap_or((AUTHOR, ""));
        let mut command = Command::new(&self.binary);
        command
            .args(["run", "--once", "--metrics-port", "0"])
            .args(["--namespace", &self.namespace])
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .arg("--registries-conf-path")
            .arg(conf)
            .args(["--git-commit-user", name])
            .args(["--git-commit-email", email.trim_end_matches('>')])
            .arg("--git-commit-message-path")
            .arg(self.work.path().join("commit.template"))
            .stdin(Stdio::null());
        command
    }

    /// `ferry-image-updater test` of `image` with the Application's settings and the registry's
    /// login from registries.conf (its pull Secret): each tag's fate.
    fn test(&self, image: &str) -> Result<String> {
        run(Command::new(&self.binary)
            .args(["test", image, "--semver-constraint", CONSTRAINT])
            .args(["--allow-tags", ALLOW_TAGS])
            .arg("--registries-conf-path")
            .arg(&self.good)
            .env("KUBECONFIG", &self.kubeconfig))
    }

    /// One cycle that must succeed.
    fn cycle(&self, conf: &Path) -> Result<()> {
        let out = self.command(conf).output()?;
        if !out.status.success() {
            bail!(
                "ferry-image-updater failed ({}):\n{}",
                out.status,
                text(&out)
            );
        }
        Ok(())
    }

    /// One cycle that must fail; what it logged.
    fn cycle_failing(&self, conf: &Path) -> Result<String> {
        let out = self.command(conf).output()?;
        if out.status.success() {
            bail!("ferry-image-updater succeeded:\n{}", text(&out));
        }
        Ok(text(&out))
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs a command to success; its stdout.
fn run(command: &mut Command) -> Result<String> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {command:?}"))?;
    if !out.status.success() {
        bail!("{command:?} failed ({}):\n{}", out.status, text(&out));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// git in the configuration repository's bare repository, where the updater pushed.
fn bare_git(repo: &GitRepo, args: &[&str]) -> Result<String> {
    let out = run(Command::new("git")
        .arg("--git-dir")
        .arg(repo.bare_path())
        .args(args))?;
    Ok(out.trim().to_string())
}

/// The notes of the RegistryError Events on Application `app`.
async fn registry_errors(story: &Story, app: &str) -> Result<Vec<String>> {
    let events = story
        .ctx
        .api::<Event>()
        .list(&ListParams::default().fields(&format!("involvedObject.name={app}")))
        .await?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some("RegistryError"))
        .filter_map(|e| e.message)
        .collect())
}
