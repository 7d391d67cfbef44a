//! What deploy/ and the chart render, without a cluster: ferry's own CRDs, the same objects in
//! both, the chart's values in the objects, HTTPS alike.

use std::collections::BTreeSet;

use anyhow::Result;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::{Value, json};

use crate::tools::{Tools, args, container, env, find, kind_and_name, objects, repo_root};

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
            "Service" => {
                same("/spec/ports");
                same("/spec/clusterIP");
            }
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
                // The chart states the defaults of the processors and of the diff; deploy/
                // leaves them to the binary.
                let chart_args: Vec<_> = args(theirs)
                    .into_iter()
                    .filter(|arg| {
                        !arg.contains("-processors=") && *arg != "--server-side-diff=true"
                    })
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
    application.namespaces: team-*,/^ci-[0-9]+$/
    controller.diff.server.side: false
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
        "--application-namespaces=team-*,/^ci-[0-9]+$/",
        // Three replicas, three shards: the server asks each pod by its name.
        "--controller-url=http://cd-application-controller-0.cd-application-controller:8084,\
         http://cd-application-controller-1.cd-application-controller:8084,\
         http://cd-application-controller-2.cd-application-controller:8084",
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
    assert!(args(controller).contains(&"--server-side-diff=false"));
    assert!(args(controller).contains(&"--application-namespaces=team-*,/^ci-[0-9]+$/"));
    // Apps in other namespaces: the API server reads and writes Applications everywhere.
    assert!(
        find(&rendered, "ClusterRole", "cd-server")?["rules"]
            .as_array()
            .unwrap()
            .contains(&json!({
                "apiGroups": ["argoproj.io"], "resources": ["applications"],
                "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"],
            }))
    );
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

    // The ApplicationSet controller: replicas elect a leader, progressive syncs on; it can be
    // left out.
    let appset = objects(&tools.helm_template(
        "r",
        "cd",
        r#"
configs:
  params: {applicationsetcontroller.enable.progressive.syncs: true}
applicationSet:
  replicas: 2
  extraArgs: [--concurrent-reconciliations=20]
  extraEnv: [{name: EXTRA, value: "1"}]
  pdb: {enabled: true}
"#,
    )?)?;
    let controller = find(&appset, "Deployment", "r-ferry-applicationset-controller")?;
    assert_eq!(controller["spec"]["replicas"], 2);
    assert_eq!(
        args(controller),
        [
            "--enable-leader-election",
            "--enable-progressive-syncs",
            "--concurrent-reconciliations=20"
        ]
    );
    assert_eq!(env(controller, "EXTRA"), Some("1"));
    find(
        &appset,
        "PodDisruptionBudget",
        "r-ferry-applicationset-controller",
    )?;
    let without = objects(&tools.helm_template("r", "cd", "applicationSet: {enabled: false}")?)?;
    assert!(
        !without.iter().any(|object| kind_and_name(object)
            .1
            .contains("applicationset-controller")),
        "applicationSet.enabled false"
    );

    // Declarative repositories, known hosts and keys, read back by ferry's own code.
    let settings = objects(&tools.helm_template(
        "r",
        "cd",
        r#"
configs:
  ssh: {knownHosts: "github.com ssh-ed25519 AAAA", extraHosts: "git.example ssh-ed25519 BBBB"}
  gpg: {keys: {ABCDEF0123456789: "-----BEGIN PGP PUBLIC KEY BLOCK-----"}}
  tls: {certificates: {git.example: "-----BEGIN CERTIFICATE-----"}}
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
        find(&settings, "ConfigMap", "argocd-tls-certs-cm")?["data"]["git.example"],
        "-----BEGIN CERTIFICATE-----"
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
    assert!(find(&defaults, "ConfigMap", "argocd-tls-certs-cm").is_err());
    Ok(())
}

/// The values that replace what the chart makes: the Service type and node ports, a
/// ServiceAccount of the user's, narrower controller rights, a disruption budget and more objects.
#[test]
fn the_charts_replacements_reach_the_objects() -> Result<()> {
    let rendered = objects(&Tools::new()?.helm_template(
        "x",
        "argocd",
        r#"
server:
  service: {type: NodePort}
  serviceAccount: {create: false, name: custom}
controller:
  clusterRoleRules:
    enabled: true
    rules: [{apiGroups: [apps], resources: [deployments], verbs: ["*"]}]
  pdb: {enabled: true, maxUnavailable: 1}
extraObjects:
  - {apiVersion: v1, kind: ConfigMap, metadata: {name: "{{ .Release.Name }}-extra"}}
"#,
    )?)?;
    let service = find(&rendered, "Service", "x-ferry-server")?;
    assert_eq!(service["spec"]["type"], "NodePort");
    assert_eq!(service["spec"]["ports"][0]["nodePort"], 30080);
    assert!(find(&rendered, "ServiceAccount", "custom").is_err());
    assert!(find(&rendered, "ServiceAccount", "x-ferry-server").is_err());
    let server = find(&rendered, "Deployment", "x-ferry-server")?;
    assert_eq!(
        server["spec"]["template"]["spec"]["serviceAccountName"],
        "custom"
    );
    assert_eq!(
        find(&rendered, "ClusterRoleBinding", "x-ferry-server")?["subjects"][0]["name"],
        "custom"
    );
    assert_eq!(
        find(&rendered, "ClusterRole", "x-ferry-application-controller")?["rules"],
        json!([{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["*"]}])
    );
    let pdb = find(
        &rendered,
        "PodDisruptionBudget",
        "x-ferry-application-controller",
    )?;
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    find(&rendered, "ConfigMap", "x-extra")?;
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

/// The workflow controller, off by default: the chart with workflows.enabled installs what
/// deploy/ with its workflows component adds (release `ferry` in `argocd`), with the same
/// rules, flags, environment, volumes and security contexts.
#[test]
fn the_charts_workflows_match_deploys_workflows_component() -> Result<()> {
    let tools = Tools::new()?;
    let ours = |objects: Vec<Value>| -> Vec<Value> {
        objects
            .into_iter()
            .filter(|o| kind_and_name(o).1.starts_with("ferry-workflow-controller"))
            .collect()
    };
    let default = ours(objects(&tools.helm_template("ferry", "argocd", "")?)?);
    assert!(default.is_empty(), "off by default: {default:#?}");
    let charted = ours(objects(&tools.helm_template(
        "ferry",
        "argocd",
        "workflows: {enabled: true}",
    )?)?);
    let kustomized = ours(objects(
        &tools.kustomize_overlay("components:\n  - deploy/components/workflows\n")?,
    )?);
    let kinds = |objects: &[Value]| -> BTreeSet<(String, String)> {
        objects.iter().map(kind_and_name).collect()
    };
    assert_eq!(kinds(&charted), kinds(&kustomized));
    assert_eq!(kinds(&charted).len(), 5, "{charted:#?}");
    for (kind, name) in kinds(&charted) {
        let (ours, theirs) = (
            find(&kustomized, &kind, &name)?,
            find(&charted, &kind, &name)?,
        );
        let same = |pointer: &str| {
            assert_eq!(
                ours.pointer(pointer),
                theirs.pointer(pointer),
                "{kind}: {pointer}"
            )
        };
        match kind.as_str() {
            "ClusterRole" => same("/rules"),
            "ClusterRoleBinding" => {
                same("/roleRef");
                same("/subjects");
            }
            "ServiceAccount" => {}
            "Service" => {
                same("/spec/ports");
                // The chart's selectors add the release's instance label.
                same("/spec/selector/app.kubernetes.io~1name");
            }
            "Deployment" => {
                same("/spec/replicas");
                same("/spec/strategy");
                for field in ["serviceAccountName", "securityContext", "volumes"] {
                    same(&format!("/spec/template/spec/{field}"));
                }
                for field in [
                    "image",
                    "command",
                    "args",
                    "securityContext",
                    "volumeMounts",
                    "ports",
                    "livenessProbe",
                ] {
                    same(&format!("/spec/template/spec/containers/0/{field}"));
                }
                assert_eq!(env(ours, "HOME"), env(theirs, "HOME"));
                assert_eq!(env(theirs, "FERRY_LOG"), Some("info,kube=warn"));
            }
            other => panic!("unexpected {other}"),
        }
    }
    // The executor image and its pull policy from the values.
    let charted = ours(objects(&tools.helm_template(
        "ferry",
        "argocd",
        "workflows:\n  enabled: true\n  executor:\n    image: {repository: registry.example/exec, tag: v1, imagePullPolicy: Always}\n  extraRules: [{apiGroups: [''], resources: [configmaps], verbs: [create]}]\n",
    )?)?);
    let deployment = find(&charted, "Deployment", "ferry-workflow-controller")?;
    assert_eq!(
        args(deployment),
        [
            "--executor-image=registry.example/exec:v1",
            "--executor-image-pull-policy=Always",
            "--metrics-listen=0.0.0.0:9090"
        ]
    );
    let role = find(&charted, "ClusterRole", "ferry-workflow-controller")?;
    let rules = role["rules"].as_array().unwrap();
    assert_eq!(rules.last().unwrap()["verbs"], json!(["create"]));
    Ok(())
}
