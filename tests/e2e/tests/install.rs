//! Installing ferry into a cluster: the Kustomize install in deploy/ and the Helm chart in
//! charts/ferry build, install ferry's own CRDs, agree with each other, carry the chart's values,
//! pass the API server's validation, and a Helm release installs, upgrades and uninstalls
//! keeping the Applications (kwok nodes run no containers, so the pods are only scheduled).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use ferry_e2e::{Story, is};
use ferry_testkit::kube::TestContext;
use ferry_testkit::server::admin_password;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Pod, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::ClusterRole;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use reqwest::Method;
use serde::Deserialize;
use serde_json::{Value, json};
use tempfile::TempDir;

const TIMEOUT: Duration = Duration::from_secs(120);

/// The toolchain's helm, kustomize and kubectl, helm with a home of its own.
struct Tools {
    bin: PathBuf,
    home: TempDir,
}

impl Tools {
    fn new() -> Result<Self> {
        Ok(Self {
            bin: ferry_sandbox::toolchain::bin_dir(),
            home: tempfile::Builder::new()
                .prefix("ferry-install-")
                .tempdir()?,
        })
    }

    /// Runs `tool` in the repository root; its stdout, or an error with its stderr.
    fn run(&self, tool: &str, args: &[&str]) -> Result<String> {
        let home = self.home.path();
        let out = Command::new(self.bin.join(tool))
            .args(args)
            .current_dir(repo_root())
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {tool} (build it with scripts/toolchain)"))?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// A file in the tools' scratch directory.
    fn write(&self, name: &str, content: &str) -> Result<String> {
        let path = self.home.path().join(name);
        std::fs::write(&path, content)?;
        Ok(path.to_string_lossy().into_owned())
    }

    /// `kustomize build deploy`.
    fn kustomize_build(&self) -> Result<String> {
        self.run("kustomize", &["build", "deploy"])
    }

    /// `kustomize build` of an overlay of deploy/ whose kustomization.yaml, besides naming
    /// deploy/ as its resource, holds `settings`.
    fn kustomize_overlay(&self, settings: &str) -> Result<String> {
        let overlay = self.home.path().join("overlay");
        copy_dir(&repo_root().join("deploy"), &overlay.join("deploy"))?;
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!("resources:\n  - deploy\n{settings}"),
        )?;
        self.run("kustomize", &["build", &overlay.to_string_lossy()])
    }

    /// `helm template` of the chart with `values` (YAML).
    fn helm_template(&self, release: &str, namespace: &str, values: &str) -> Result<String> {
        let values = self.write("values.yaml", values)?;
        self.run(
            "helm",
            &[
                "template",
                release,
                "charts/ferry",
                "--namespace",
                namespace,
                "--values",
                &values,
            ],
        )
    }
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The objects of a multi-document YAML stream.
fn objects(yaml: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

fn kind_and_name(object: &Value) -> (String, String) {
    let text = |pointer| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    (text("/kind").into(), text("/metadata/name").into())
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|object| kind_and_name(object) == (kind.into(), name.into()))
        .with_context(|| format!("no {kind} {name} among the objects"))
}

/// The CRDs ferry installs itself (`ferry_types::crds`), as JSON.
fn ferrys_crds() -> Result<Vec<Value>> {
    ferry_types::crds()?
        .iter()
        .map(|crd| Ok(serde_json::to_value(crd)?))
        .collect()
}

/// A rendered object as its typed form would serialize it, to compare with [`ferrys_crds`].
fn crd_as_ferry_writes_it(object: &Value) -> Result<Value> {
    let crd: CustomResourceDefinition = serde_json::from_value(object.clone())?;
    Ok(serde_json::to_value(crd)?)
}

/// The names of the YAML files in `dir` of the repository.
fn yaml_files(dir: &str) -> Result<BTreeSet<String>> {
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(repo_root().join(dir))? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") {
            names.insert(name);
        }
    }
    Ok(names)
}

/// The value of environment variable `name` of a workload's first container.
fn env<'a>(workload: &'a Value, name: &str) -> Option<&'a str> {
    container(workload)["env"]
        .as_array()?
        .iter()
        .find(|var| var["name"] == name)?["value"]
        .as_str()
}

/// The first container of a workload's pod template.
fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

fn args(workload: &Value) -> Vec<&str> {
    container(workload)["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

#[test]
fn the_installs_hold_ferrys_own_crds() -> Result<()> {
    // ferry_types' CRDs are the files of crates/ferry-types/crds; deploy/ and the chart hold
    // copies, since neither Kustomize nor Helm reads files outside their directory.
    let source = "crates/ferry-types/crds";
    let files = yaml_files(source)?;
    assert_eq!(files.len(), ferry_types::crds()?.len(), "{source}");
    for dir in ["deploy/crds", "charts/ferry/files/crds"] {
        assert_eq!(yaml_files(dir)?, files, "{dir} holds the CRDs of {source}");
        for file in &files {
            let read = |dir: &str| std::fs::read_to_string(repo_root().join(dir).join(file));
            assert!(
                read(dir)? == read(source)?,
                "{dir}/{file} differs from ferry's: cp {source}/{file} {dir}/"
            );
        }
    }

    let tools = Tools::new()?;
    let kustomized = objects(&tools.kustomize_build()?)?;
    let charted = objects(&tools.helm_template("ferry", "argocd", "")?)?;
    let crds_among = |objects: &[Value]| {
        objects
            .iter()
            .filter(|object| object["kind"] == "CustomResourceDefinition")
            .count()
    };
    let crds = ferrys_crds()?;
    assert_eq!(crds_among(&kustomized), crds.len());
    assert_eq!(crds_among(&charted), crds.len());
    // Both add annotations that keep the CRDs when an Application of the install is deleted, the
    // chart also Helm's that keeps them on uninstall.
    let without_annotations = |object: &Value| {
        let mut object = object.clone();
        let annotations = object["metadata"]
            .as_object_mut()
            .and_then(|metadata| metadata.remove("annotations"));
        (object, annotations.unwrap_or_default())
    };
    let keep_with_ferry = json!({"argocd.argoproj.io/sync-options": "Delete=false,Prune=false"});
    let keep_with_helm = json!({
        "helm.sh/resource-policy": "keep",
        "argocd.argoproj.io/sync-options": "Delete=false,Prune=false",
    });
    for crd in crds {
        let (_, name) = kind_and_name(&crd);
        let (kustomized, annotations) =
            without_annotations(find(&kustomized, "CustomResourceDefinition", &name)?);
        assert_eq!(annotations, keep_with_ferry);
        assert_eq!(crd_as_ferry_writes_it(&kustomized)?, crd);
        let (from_chart, annotations) =
            without_annotations(find(&charted, "CustomResourceDefinition", &name)?);
        assert_eq!(annotations, keep_with_helm);
        assert_eq!(crd_as_ferry_writes_it(&from_chart)?, crd);
    }
    Ok(())
}

#[test]
fn the_chart_lints() -> Result<()> {
    let out = Tools::new()?.run("helm", &["lint", "--strict", "charts/ferry"])?;
    assert!(out.contains("0 chart(s) failed"), "{out}");
    Ok(())
}

/// With release `ferry` in `argocd`, the chart installs what `kubectl apply -k deploy/` does,
/// but the namespace (`helm install --create-namespace` makes it), with the same RBAC rules,
/// ports, commands, environment, volumes and security contexts.
#[test]
fn the_chart_and_deploy_install_the_same_objects() -> Result<()> {
    let tools = Tools::new()?;
    let kustomized = objects(&tools.kustomize_build()?)?;
    let charted = objects(&tools.helm_template("ferry", "argocd", "")?)?;
    let names = |objects: &[Value]| -> BTreeSet<(String, String)> {
        objects.iter().map(kind_and_name).collect()
    };
    let mut expected = names(&kustomized);
    assert!(expected.remove(&("Namespace".into(), "argocd".into())));
    assert_eq!(names(&charted), expected);

    for (kind, name) in &expected {
        let (ours, theirs) = (find(&kustomized, kind, name)?, find(&charted, kind, name)?);
        let same = |pointer: &str| {
            assert_eq!(
                ours.pointer(pointer),
                theirs.pointer(pointer),
                "{kind} {name}: {pointer}"
            )
        };
        match kind.as_str() {
            "Role" | "ClusterRole" => same("/rules"),
            "RoleBinding" | "ClusterRoleBinding" => same("/roleRef"),
            "Service" => same("/spec/ports"),
            "NetworkPolicy" => {
                same("/spec/policyTypes");
                let ports = |policy: &Value| {
                    policy["spec"]["ingress"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|rule| rule["ports"].clone())
                        .collect::<Vec<_>>()
                };
                assert_eq!(ports(ours), ports(theirs), "{kind} {name}: ports");
            }
            "Deployment" | "StatefulSet" => {
                same("/spec/replicas");
                same("/spec/podManagementPolicy");
                for field in ["serviceAccountName", "securityContext", "volumes"] {
                    same(&format!("/spec/template/spec/{field}"));
                }
                for field in [
                    "command",
                    "ports",
                    "securityContext",
                    "volumeMounts",
                    "readinessProbe",
                    "livenessProbe",
                ] {
                    same(&format!("/spec/template/spec/containers/0/{field}"));
                }
                let env_names = |workload: &Value| -> BTreeSet<String> {
                    container(workload)["env"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|var| var["name"].as_str().map(String::from))
                        .collect()
                };
                let mut chart_env = env_names(theirs);
                // The chart's global.logging.level.
                assert!(chart_env.remove("FERRY_LOG"), "{kind} {name}: FERRY_LOG");
                assert_eq!(env_names(ours), chart_env, "{kind} {name}: env");
                // The chart states the processors' defaults; deploy/ leaves them to the binary.
                let chart_args: Vec<_> = args(theirs)
                    .into_iter()
                    .filter(|arg| !arg.contains("-processors="))
                    .collect();
                assert_eq!(args(ours), chart_args, "{kind} {name}: args");
            }
            _ => {}
        }
    }
    Ok(())
}

#[test]
fn the_charts_values_reach_the_objects() -> Result<()> {
    let tools = Tools::new()?;
    let values = r#"
fullnameOverride: cd
crds:
  install: false
global:
  image: {repository: registry.example/ferry, tag: "1.2.3"}
  imagePullSecrets: [{name: pull}]
configs:
  params:
    server.insecure: false
  cm:
    url: https://cd.example.com
    oidc.config: |
      name: Okta
      issuer: https://example.okta.com
      clientSecret: $oidc.okta.clientSecret
  rbac:
    policy.csv: "g, my-org:team, role:admin"
  secret:
    argocdServerAdminPassword: $2a$10$hash
    argocdServerAdminPasswordMtime: "2026-01-02T03:04:05Z"
    extra: {oidc.okta.clientSecret: s3cret}
controller:
  replicas: 3
  extraArgs: [--resync=300]
  nodeSelector: {pool: system}
server:
  replicas: 2
  extraArgs: [--log-json]
  extraEnv: []
  resources: {limits: {memory: 512Mi}}
  env: [{name: EXTRA, value: "1"}]
  pdb: {enabled: true}
  ingress:
    enabled: true
    ingressClassName: nginx
    hostname: cd.example.com
    tls: true
    extraHosts: [{name: cd.example.org}]
"#;
    let error = tools
        .helm_template("r", "cd", values)
        .expect_err("server.extraEnv is no value of the chart");
    assert!(format!("{error:#}").contains("extraEnv"), "{error:#}");
    let rendered =
        objects(&tools.helm_template("r", "cd", &values.replace("  extraEnv: []\n", ""))?)?;

    assert!(
        !rendered
            .iter()
            .any(|object| object["kind"] == "CustomResourceDefinition"),
        "crds.install false"
    );
    let server = find(&rendered, "Deployment", "cd-server")?;
    assert_eq!(server["spec"]["replicas"], 2);
    assert_eq!(container(server)["image"], "registry.example/ferry:1.2.3");
    assert_eq!(
        server["spec"]["template"]["spec"]["imagePullSecrets"],
        json!([{"name": "pull"}])
    );
    assert_eq!(container(server)["resources"]["limits"]["memory"], "512Mi");
    assert!(
        container(server)["env"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "EXTRA", "value": "1"}))
    );
    let server_args = args(server);
    for arg in [
        "--tls-cert=/etc/ferry/tls/tls.crt",
        "--tls-key=/etc/ferry/tls/tls.key",
        "--log-json",
        "--controller-url=http://cd-application-controller:8084",
    ] {
        assert!(server_args.contains(&arg), "{arg} in {server_args:?}");
    }
    assert_eq!(
        container(server)["readinessProbe"]["httpGet"]["scheme"],
        "HTTPS"
    );
    assert!(
        server["spec"]["template"]["spec"]["volumes"]
            .as_array()
            .unwrap()
            .contains(&json!({"name": "tls", "secret": {"secretName": "argocd-server-tls"}}))
    );

    let controller = find(&rendered, "StatefulSet", "cd-application-controller")?;
    assert_eq!(controller["spec"]["replicas"], 3);
    assert_eq!(
        env(controller, "ARGOCD_CONTROLLER_REPLICAS"),
        Some("3"),
        "a shard per replica"
    );
    assert!(args(controller).contains(&"--resync=300"));
    assert_eq!(
        controller["spec"]["template"]["spec"]["nodeSelector"],
        json!({"pool": "system"})
    );

    let ingress = find(&rendered, "Ingress", "cd-server")?;
    assert_eq!(ingress["spec"]["ingressClassName"], "nginx");
    let hosts: Vec<_> = ingress["spec"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|rule| rule["host"].as_str().unwrap())
        .collect();
    assert_eq!(hosts, ["cd.example.com", "cd.example.org"]);
    assert_eq!(
        ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"],
        json!({"name": "cd-server", "port": {"name": "https"}})
    );
    assert_eq!(
        ingress["spec"]["tls"],
        json!([{"hosts": ["cd.example.com"], "secretName": "argocd-server-tls"}])
    );
    assert_eq!(
        find(&rendered, "PodDisruptionBudget", "cd-server")?["spec"]["minAvailable"],
        1
    );

    let cm = find(&rendered, "ConfigMap", "argocd-cm")?;
    assert_eq!(cm["data"]["url"], "https://cd.example.com");
    assert!(
        cm["data"]["oidc.config"]
            .as_str()
            .unwrap()
            .contains("clientSecret: $oidc.okta.clientSecret\n")
    );
    assert_eq!(
        find(&rendered, "ConfigMap", "argocd-rbac-cm")?["data"]["policy.csv"],
        "g, my-org:team, role:admin"
    );
    let secret: Secret =
        serde_json::from_value(find(&rendered, "Secret", "argocd-secret")?.clone())?;
    let data = secret.data.unwrap_or_default();
    let decoded = |key: &str| String::from_utf8_lossy(&data[key].0).into_owned();
    assert_eq!(decoded("admin.password"), "$2a$10$hash");
    assert_eq!(decoded("admin.passwordMtime"), "2026-01-02T03:04:05Z");
    assert_eq!(decoded("oidc.okta.clientSecret"), "s3cret");

    // Standbys: replicas of one shard electing a leader.
    let standby = objects(&tools.helm_template(
        "r",
        "cd",
        r#"
controller:
  replicas: 2
  leaderElection: {enabled: true}
configs:
  params: {controller.sharding.algorithm: round-robin}
"#,
    )?)?;
    let controller = find(&standby, "StatefulSet", "r-ferry-application-controller")?;
    assert_eq!(controller["spec"]["replicas"], 2);
    assert_eq!(env(controller, "ARGOCD_CONTROLLER_REPLICAS"), Some("1"));
    assert_eq!(env(controller, "FERRY_LEADER_ELECT"), Some("true"));
    assert_eq!(
        env(controller, "ARGOCD_CONTROLLER_SHARDING_ALGORITHM"),
        Some("round-robin")
    );

    // Declarative repositories, known hosts and keys, read back by ferry's own code.
    let settings = objects(&tools.helm_template(
        "r",
        "cd",
        r#"
configs:
  ssh: {knownHosts: "github.com ssh-ed25519 AAAA", extraHosts: "git.example ssh-ed25519 BBBB"}
  gpg: {keys: {ABCDEF0123456789: "-----BEGIN PGP PUBLIC KEY BLOCK-----"}}
  repositories:
    charts: {url: "https://charts.example", type: helm, username: u, password: p}
  credentialTemplates:
    org: {url: "https://git.example/org", password: t}
"#,
    )?)?;
    let secret = |name: &str| -> Result<RepoSecret> {
        let secret: Secret = serde_json::from_value(find(&settings, "Secret", name)?.clone())?;
        RepoSecret::from_secret(&secret).map_err(anyhow::Error::msg)
    };
    let charts = secret("argocd-repo-charts")?;
    assert_eq!(charts.kind, RepoSecretKind::Repository);
    assert_eq!(
        (charts.url.as_str(), charts.repo_type.as_str()),
        ("https://charts.example", "helm")
    );
    assert_eq!(charts.password.as_deref(), Some("p"));
    let org = secret("argocd-repo-creds-org")?;
    assert_eq!(org.kind, RepoSecretKind::RepoCreds);
    assert_eq!(org.url, "https://git.example/org");
    assert_eq!(
        find(&settings, "ConfigMap", "argocd-ssh-known-hosts-cm")?["data"]["ssh_known_hosts"],
        "github.com ssh-ed25519 AAAA\ngit.example ssh-ed25519 BBBB"
    );
    assert_eq!(
        find(&settings, "ConfigMap", "argocd-gpg-keys-cm")?["data"]["ABCDEF0123456789"],
        "-----BEGIN PGP PUBLIC KEY BLOCK-----"
    );

    // The defaults: plain HTTP, no TLS volume, no known hosts to hide existing ones.
    let defaults = objects(&tools.helm_template("r", "cd", "")?)?;
    let server = find(&defaults, "Deployment", "r-ferry-server")?;
    assert!(!args(server).iter().any(|arg| arg.starts_with("--tls")));
    assert_eq!(
        container(server)["readinessProbe"]["httpGet"]["scheme"],
        "HTTP"
    );
    assert_eq!(container(server)["image"], "ghcr.io/ferry-cd/ferry:0.1.0");
    assert!(find(&defaults, "ConfigMap", "argocd-ssh-known-hosts-cm").is_err());
    Ok(())
}

/// deploy/ with the server-tls component serves HTTPS as the chart does with server.insecure
/// false: the same certificate Secret, mount, arguments and probe.
#[test]
fn deploy_serves_https_like_the_chart() -> Result<()> {
    let tools = Tools::new()?;
    let tls =
        objects(&tools.kustomize_overlay("components:\n  - deploy/components/server-tls\n")?)?;
    let plain = objects(&tools.kustomize_build()?)?;
    let chart = objects(&tools.helm_template(
        "ferry",
        "argocd",
        "configs:\n  params:\n    server.insecure: false\n",
    )?)?;
    let [https, plain, chart] =
        [&tls, &plain, &chart].map(|objects| find(objects, "Deployment", "ferry-server"));
    let (https, plain, chart) = (https?, plain?, chart?);
    let volumes = |workload: &Value| workload["spec"]["template"]["spec"]["volumes"].clone();
    assert_ne!(volumes(https), volumes(plain));
    assert_eq!(volumes(https), volumes(chart));
    for field in ["volumeMounts", "readinessProbe"] {
        assert_eq!(container(https)[field], container(chart)[field], "{field}");
    }
    assert_eq!(args(https), args(chart));
    Ok(())
}

/// What `kubectl apply --dry-run=server` says of the objects in `yaml`, in `namespace`.
fn server_dry_run(tools: &Tools, kubeconfig: &Path, namespace: &str, yaml: &str) -> Result<String> {
    let file = tools.write("objects.yaml", yaml)?;
    tools.run(
        "kubectl",
        &[
            "--kubeconfig",
            &kubeconfig.to_string_lossy(),
            "apply",
            "--dry-run=server",
            "--namespace",
            namespace,
            "--filename",
            &file,
        ],
    )
}

#[tokio::test]
async fn both_installs_pass_the_api_servers_validation() -> Result<()> {
    let ctx = TestContext::new().await?;
    ferry_types::install_crds(&ctx.client(), "ferry-e2e").await?;
    let tools = Tools::new()?;

    let kustomized = tools.kustomize_overlay(&format!("namespace: {}\n", ctx.namespace()))?;
    let applied = server_dry_run(&tools, ctx.kubeconfig(), ctx.namespace(), &kustomized)?;
    let expected = objects(&kustomized)?.len();
    assert_eq!(applied.lines().count(), expected, "{applied}");
    assert!(
        applied.contains("statefulset.apps/ferry-application-controller"),
        "{applied}"
    );

    let charted = tools.helm_template("ferry", ctx.namespace(), "")?;
    let applied = server_dry_run(&tools, ctx.kubeconfig(), ctx.namespace(), &charted)?;
    assert_eq!(
        applied.lines().count(),
        objects(&charted)?.len(),
        "{applied}"
    );
    assert!(
        applied.contains("deployment.apps/ferry-server"),
        "{applied}"
    );
    Ok(())
}

/// A Helm release of the chart in a test's namespace, named after it. Dropping it uninstalls it:
/// its ClusterRoles and ClusterRoleBindings would outlive the namespace.
struct Release {
    tools: Tools,
    kubeconfig: String,
    namespace: String,
    name: String,
    installed: bool,
}

impl Release {
    fn new(ctx: &TestContext) -> Result<Self> {
        Ok(Self {
            tools: Tools::new()?,
            kubeconfig: ctx.kubeconfig().to_string_lossy().into_owned(),
            namespace: ctx.namespace().to_string(),
            name: format!("ferry-{}", ctx.namespace()),
            installed: false,
        })
    }

    fn helm(&self, args: &[&str]) -> Result<String> {
        let mut all = vec![
            "--kubeconfig",
            &self.kubeconfig,
            "--namespace",
            &self.namespace,
        ];
        all.extend_from_slice(args);
        self.tools.run("helm", &all)
    }

    /// `helm install` of charts/ferry with more `args` (`--set ...`).
    fn install(&mut self, args: &[&str]) -> Result<()> {
        let mut all = vec!["install", &self.name, "charts/ferry"];
        all.extend_from_slice(args);
        self.helm(&all)?;
        self.installed = true;
        Ok(())
    }

    fn upgrade(&self, args: &[&str]) -> Result<()> {
        let mut all = vec!["upgrade", &self.name, "charts/ferry"];
        all.extend_from_slice(args);
        self.helm(&all).map(drop)
    }

    fn uninstall(&mut self) -> Result<()> {
        self.helm(&["uninstall", &self.name, "--wait"])?;
        self.installed = false;
        Ok(())
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        if self.installed
            && let Err(err) = self.uninstall()
        {
            eprintln!(
                "warning: could not uninstall release {}: {err:#}",
                self.name
            );
        }
    }
}

/// Makes the Helm release `release` in `namespace` the owner of the CRDs already installed (other
/// tests install them), as an Argo CD user switching to the chart does with Argo CD's.
async fn adopt_crds(client: &kube::Client, release: &str, namespace: &str) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let patch = json!({"metadata": {
        "labels": {"app.kubernetes.io/managed-by": "Helm"},
        "annotations": {
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": namespace,
        },
    }});
    for crd in ferry_types::crds()? {
        let name = crd.metadata.name.unwrap_or_default();
        crds.patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .with_context(|| format!("adopting CRD {name}"))?;
    }
    Ok(())
}

async fn eventually<T, F, Fut>(what: &str, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let start = Instant::now();
    loop {
        if let Some(found) = check().await? {
            return Ok(found);
        }
        if start.elapsed() > TIMEOUT {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_helm_release_upgrades_and_uninstalls_keeping_the_applications() -> Result<()> {
    let ctx = TestContext::new().await?;
    let client = ctx.client();
    let namespace = ctx.namespace();
    ferry_types::install_crds(&client, "ferry-e2e").await?;
    let mut release = Release::new(&ctx)?;
    adopt_crds(&client, &release.name, namespace).await?;
    release.install(&[])?;
    let deployments: Api<Deployment> = ctx.api();
    let server_name = format!("{}-server", release.name);
    let pods: Api<Pod> = ctx.api();
    let selector = format!("app.kubernetes.io/instance={}", release.name);
    eventually("a server and a controller pod", || async {
        let listed = pods.list(&ListParams::default().labels(&selector)).await?;
        let components: BTreeSet<_> = listed
            .items
            .iter()
            .filter_map(|pod| {
                pod.metadata
                    .labels
                    .as_ref()?
                    .get("app.kubernetes.io/component")
                    .cloned()
            })
            .collect();
        Ok((components.len() == 2).then_some(()))
    })
    .await?;

    // What the running API server would add to argocd-secret on its first start.
    let secrets: Api<Secret> = ctx.api();
    secrets
        .patch(
            "argocd-secret",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"server.secretkey": "generated"}})),
        )
        .await?;
    let app: ferry_types::Application = serde_json::from_value(json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": "guestbook", "namespace": namespace},
        "spec": {
            "project": "default",
            "source": {"repoURL": "https://git.example/apps.git", "path": "guestbook"},
            "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
        },
    }))?;
    let apps: Api<ferry_types::Application> = ctx.api();
    let created = apps.create(&PostParams::default(), &app).await?;

    let before = deployments.get(&server_name).await?;
    release.upgrade(&["--set", "global.logging.format=json"])?;
    let after = deployments.get(&server_name).await?;
    assert!(args(&serde_json::to_value(&after)?).contains(&"--log-json"));
    assert!(after.metadata.generation > before.metadata.generation);
    let replica_sets: Api<ReplicaSet> = ctx.api();
    eventually("the upgrade's ReplicaSet", || async {
        let listed = replica_sets
            .list(&ListParams::default().labels(&selector))
            .await?;
        Ok(listed
            .items
            .iter()
            .any(|set| {
                set.spec
                    .as_ref()
                    .and_then(|spec| spec.template.as_ref()?.spec.as_ref())
                    .is_some_and(|pod| {
                        pod.containers[0]
                            .args
                            .iter()
                            .flatten()
                            .any(|arg| arg == "--log-json")
                    })
            })
            .then_some(()))
    })
    .await?;
    let secret = secrets.get("argocd-secret").await?;
    assert!(
        secret
            .data
            .unwrap_or_default()
            .contains_key("server.secretkey"),
        "the upgrade keeps what the server generated"
    );
    assert_eq!(
        apps.get("guestbook").await?.metadata.uid,
        created.metadata.uid
    );

    release.uninstall()?;
    assert!(deployments.get_opt(&server_name).await?.is_none());
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in ferry_types::crds()? {
        let name = crd.metadata.name.unwrap_or_default();
        assert!(crds.get_opt(&name).await?.is_some(), "{name} is kept");
    }
    assert_eq!(
        apps.get("guestbook").await?.metadata.uid,
        created.metadata.uid
    );
    Ok(())
}

/// A kubeconfig for the cluster of `ctx` that authenticates as ServiceAccount `name` of its
/// namespace, with a token from the TokenRequest API.
async fn service_account_kubeconfig(ctx: &TestContext, name: &str, path: &Path) -> Result<()> {
    let accounts: Api<ServiceAccount> = ctx.api();
    let request: TokenRequest = serde_json::from_value(json!({"spec": {"audiences": []}}))?;
    let token = accounts
        .create_token_request(name, &PostParams::default(), &request)
        .await
        .with_context(|| format!("a token of ServiceAccount {name}"))?
        .status
        .context("TokenRequest without status")?
        .token;
    let mut kubeconfig = Kubeconfig::read_from(ctx.kubeconfig())?;
    for user in &mut kubeconfig.auth_infos {
        user.auth_info = Some(serde_json::from_value(json!({"token": token}))?);
    }
    std::fs::write(path, serde_yaml::to_string(&kubeconfig)?)?;
    Ok(())
}

/// An admin session on the API server at `base`.
struct Session {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Session {
    async fn login(story: &Story, base: String) -> Result<Self> {
        let password = admin_password(&story.ctx.client(), story.namespace()).await?;
        let http = reqwest::Client::new();
        let mut session = Self {
            http,
            base,
            token: String::new(),
        };
        let login = session
            .call(
                Method::POST,
                "/api/v1/session",
                Some(json!({"username": "admin", "password": password})),
            )
            .await?;
        session.token = login["token"].as_str().context("no token")?.to_string();
        Ok(session)
    }

    /// A call that must succeed; its JSON answer.
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Result<Value> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body: Value = response.json().await?;
        anyhow::ensure!(status.is_success(), "{method} {path}: {status} {body}");
        Ok(body)
    }
}

/// The API server run as the ServiceAccount the chart makes for it, with the Role and
/// ClusterRole the chart grants: the first start (argocd-secret, the default project), a login,
/// an app created and synced through the API, the controller's views of it, a live Deployment
/// read, patched and deleted, the app's audit Events and a logout all work with those rights.
#[tokio::test]
async fn the_api_server_works_with_the_rights_the_chart_gives_it() -> Result<()> {
    let mut story = Story::new().await?;
    let namespace = story.namespace().to_string();
    let mut release = Release::new(&story.ctx)?;
    release.install(&["--set", "crds.install=false"])?;
    let kubeconfig = release.tools.home.path().join("server-kubeconfig");
    let account = format!("{}-server", release.name);
    service_account_kubeconfig(&story.ctx, &account, &kubeconfig).await?;

    story.start_controller()?;
    let server = story.start_server_as(&kubeconfig).await?;
    let api = Session::login(&story, format!("http://{}", server.address())).await?;
    let app = story.app_name("guestbook");
    api.call(
        Method::POST,
        "/api/v1/applications",
        Some(json!({
            "metadata": {"name": app},
            "spec": {
                "project": "default",
                "source": {"repoURL": story.repo.file_url(), "path": "guestbook"},
                "destination": {"server": "https://kubernetes.default.svc", "namespace": namespace},
            },
        })),
    )
    .await?;
    api.call(
        Method::POST,
        &format!("/api/v1/applications/{app}/sync"),
        Some(json!({})),
    )
    .await?;
    story
        .wait_app(&app, "Synced and Healthy", is::synced_and_healthy)
        .await?;

    let tree = api
        .call(
            Method::GET,
            &format!("/api/v1/applications/{app}/resource-tree"),
            None,
        )
        .await?;
    assert!(
        tree["nodes"]
            .as_array()
            .is_some_and(|nodes| !nodes.is_empty()),
        "{tree}"
    );
    // A Deployment: no Role of the namespace covers it, only the server's ClusterRole.
    let resource = format!(
        "/api/v1/applications/{app}/resource?namespace={namespace}&resourceName=guestbook&group=apps&version=v1&kind=Deployment"
    );
    let live = api.call(Method::GET, &resource, None).await?;
    assert!(
        live.to_string().contains("registry.example/guestbook"),
        "{live}"
    );
    api.call(
        Method::POST,
        &format!("{resource}&patchType=application/merge-patch%2Bjson"),
        Some(json!(r#"{"metadata": {"labels": {"patched": "yes"}}}"#)),
    )
    .await?;
    let deployments: Api<Deployment> = story.ctx.api();
    let patched = deployments.get("guestbook").await?;
    assert_eq!(
        patched
            .metadata
            .labels
            .unwrap_or_default()
            .get("patched")
            .map(String::as_str),
        Some("yes")
    );
    api.call(Method::DELETE, &resource, None).await?;
    let events = api
        .call(
            Method::GET,
            &format!("/api/v1/applications/{app}/events"),
            None,
        )
        .await?;
    assert!(
        events.to_string().contains("admin"),
        "audit events name the caller: {events}"
    );
    api.call(Method::DELETE, "/api/v1/session", None).await?;

    let log = server.stop().await?;
    assert!(!log.to_lowercase().contains("forbidden"), "{log}");
    Ok(())
}

/// Deletes the ClusterRoles and ClusterRoleBindings of release `instance` when dropped: they
/// outlive the test's namespace.
struct ClusterRbacCleanup {
    tools: Tools,
    kubeconfig: String,
    instance: String,
}

impl Drop for ClusterRbacCleanup {
    fn drop(&mut self) {
        let selector = format!("app.kubernetes.io/instance={}", self.instance);
        let args = [
            "--kubeconfig",
            &self.kubeconfig,
            "delete",
            "clusterrole,clusterrolebinding",
            "--selector",
            &selector,
            "--ignore-not-found",
        ];
        if let Err(err) = self.tools.run("kubectl", &args) {
            eprintln!("warning: {err:#}");
        }
    }
}

/// Writes the directory `from` of this repository into `repo` at `to`.
fn copy_into_repo(repo: &ferry_testkit::git::GitRepo, from: &Path, to: &str) -> Result<()> {
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = format!("{to}/{}", entry.file_name().to_string_lossy());
        if entry.file_type()?.is_dir() {
            copy_into_repo(repo, &entry.path(), &target)?;
        } else {
            repo.write(&target, std::fs::read(entry.path())?)?;
        }
    }
    Ok(())
}

/// ferry managing its own installation: an Application of the chart, from Git, syncs all of it
/// (ClusterRoles, the StatefulSet, the settings) and is Healthy; a value changed in Git rolls
/// the API server's Deployment; deleting the app deletes what it installed.
#[tokio::test]
async fn ferry_manages_its_own_installation_through_an_application() -> Result<()> {
    let mut story = Story::new().await?;
    let namespace = story.namespace().to_string();
    let app = story.app_name("ferry");
    let _cleanup = ClusterRbacCleanup {
        tools: Tools::new()?,
        kubeconfig: story.ctx.kubeconfig().to_string_lossy().into_owned(),
        instance: app.clone(),
    };
    copy_into_repo(&story.repo, &repo_root().join("charts/ferry"), "ferry")?;
    let first = story.repo.commit("ferry's chart")?;
    story.start_controller()?;
    // The CRDs stay out: they are the sandbox's, shared with every other test.
    story.create_app(
        &app,
        "ferry",
        &[
            "--helm-set",
            "crds.install=false",
            "--sync-policy",
            "automated",
            "--auto-prune",
        ],
    )?;
    story
        .wait_app(&app, "Synced and Healthy", |a| {
            is::synced_and_healthy(a) && is::at_revision(&first)(a) && is::operation_finished(a)
        })
        .await?;
    // The release is the app: its name holds the chart's, so it is the objects' base name.
    let server = format!("{app}-server");
    let deployments: Api<Deployment> = story.ctx.api();
    assert_eq!(
        deployments.get(&server).await?.spec.unwrap().replicas,
        Some(1)
    );
    let cluster_roles: Api<ClusterRole> = Api::all(story.ctx.client());
    assert!(cluster_roles.get_opt(&server).await?.is_some());

    let values = std::fs::read_to_string(story.repo.work_path().join("ferry/values.yaml"))?;
    let scaled = values.replacen("  replicas: 1\n", "  replicas: 2\n", 2);
    story.repo.write("ferry/values.yaml", scaled)?;
    let second = story.repo.commit("two controllers and two API servers")?;
    story
        .wait_app(&app, "Synced at the second commit", |a| {
            is::synced(a) && is::at_revision(&second)(a) && is::operation_finished(a)
        })
        .await?;
    assert_eq!(
        deployments.get(&server).await?.spec.unwrap().replicas,
        Some(2)
    );

    story.ferry(&["app", "delete", &app, "--yes", "--wait"])?;
    assert!(deployments.get_opt(&server).await?.is_none());
    assert!(cluster_roles.get_opt(&server).await?.is_none());
    assert!(
        Api::<Secret>::namespaced(story.ctx.client(), &namespace)
            .get_opt("argocd-secret")
            .await?
            .is_none()
    );
    Ok(())
}
