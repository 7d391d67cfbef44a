//! A real node, told from a user's seat: `up` with a real node gives a Ready, tainted node where a
//! busybox pod runs and its log reads through the API; pods resolve cluster names through CoreDNS,
//! reach the API server at https://kubernetes.default.svc with their ServiceAccount token, and
//! reach another pod through a Service's ClusterIP (kube-proxy). A second sandbox cannot take the
//! host's real node while this one has it, and `down` leaves the host's sysctls, iptables, mounts
//! and links as they were.
//!
//! The host has one real node: this test first stops the shared `real` sandbox of ferry-testkit
//! (its stories start it again on demand), so that what it compares against is the host untouched.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use ferry_sandbox::real_node::{BUSYBOX_IMAGE, NODE_LABEL, TAINT_KEY};
use ferry_sandbox::{Sandbox, UpOptions, toolchain};
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, Service};
use kube::Api;
use kube::api::{LogParams, PostParams};
use serde_json::{Value, json};

const NAMESPACE: &str = "real-node-test";

#[tokio::test]
async fn a_real_node_runs_pods_with_dns_api_access_and_services_and_down_restores_the_host()
-> Result<()> {
    Sandbox::named("real")?.down()?;
    let host_before = HostState::read();

    let sandbox = Sandbox::named("it-real-node")?;
    let _cleanup = StopIfRunning(&sandbox);
    let opts = UpOptions {
        nodes: 1,
        real_node: true,
        ..Default::default()
    };
    sandbox.up(&opts).await?;
    let result = stories(&sandbox, &opts, &host_before).await;
    let stopped = sandbox.down();
    result?;
    stopped?;

    // Everything the node changed on the host is back as it was.
    let host_after = HostState::read();
    assert_eq!(host_before, host_after, "the host after down differs");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo")?;
    assert!(
        !mounts.contains(&sandbox.dir().display().to_string()),
        "mounts left under {}",
        sandbox.dir().display()
    );
    assert!(sandbox.status().iter().all(|c| c.pid.is_none()));
    std::fs::remove_dir_all(sandbox.dir())?;
    Ok(())
}

/// Stops the sandbox when the test ends with anything of it still running (a failed assertion
/// half-way), so that a failure leaves no node behind; after the test's own `down`, nothing.
struct StopIfRunning<'a>(&'a Sandbox);

impl Drop for StopIfRunning<'_> {
    fn drop(&mut self) {
        if self.0.status().iter().any(|c| c.pid.is_some())
            && let Err(err) = self.0.down()
        {
            eprintln!("stopping sandbox {}: {err:#}", self.0.name());
        }
    }
}

async fn stories(sandbox: &Sandbox, opts: &UpOptions, host_before: &HostState) -> Result<()> {
    let client = sandbox.client().await?;
    ensure!(
        HostState::read() != *host_before,
        "the node changed nothing on the host, so the restore check below could not fail"
    );

    // Only one sandbox has the host's real node; a second one is told which has it.
    let other = Sandbox::named("it-real-node-other")?;
    let refused = other.up(opts).await;
    let message = format!("{:#}", refused.expect_err("a second real node started"));
    assert!(message.contains("\"it-real-node\""), "{message}");
    assert!(other.status().iter().all(|c| c.pid.is_none()));
    std::fs::remove_dir_all(other.dir())?;

    // The node is Ready and tainted, so only pods that tolerate it land there.
    let node_name = ferry_sandbox::real_node::node_name()?;
    let node = Api::<Node>::all(client.clone()).get(&node_name).await?;
    let spec = node.spec.unwrap_or_default();
    let taint = spec
        .taints
        .unwrap_or_default()
        .into_iter()
        .find(|t| t.key == TAINT_KEY)
        .context("the real node has no taint")?;
    assert_eq!(
        (taint.effect.as_str(), taint.value.as_deref()),
        ("NoSchedule", Some("true"))
    );
    let ready = node
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    assert!(ready, "the real node is not Ready");

    let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": NAMESPACE}}))?;
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);

    // A pod resolves the API server's Service name, then calls the API with its token (kubectl,
    // a static binary mounted from the toolchain, verifies the certificate against the name).
    let kubectl = toolchain::bin_dir().join("kubectl");
    let in_cluster = pod(
        "in-cluster",
        "nslookup kubernetes.default.svc.cluster.local; \
         sa=/var/run/secrets/kubernetes.io/serviceaccount; \
         /kubectl --server https://kubernetes.default.svc --token \"$(cat $sa/token)\" \
           --certificate-authority $sa/ca.crt auth whoami -o jsonpath='{.status.userInfo.username}'",
        json!({
            "volumes": [{"name": "kubectl", "hostPath": {"path": kubectl, "type": "File"}}],
            "volumeMounts": [{"name": "kubectl", "mountPath": "/kubectl", "readOnly": true}],
        }),
    );
    pods.create(&PostParams::default(), &in_cluster).await?;
    let finished = wait_phase(&pods, "in-cluster", "Succeeded").await?;
    assert_eq!(
        finished.spec.and_then(|s| s.node_name),
        Some(node_name.clone())
    );
    let log = pods.logs("in-cluster", &LogParams::default()).await?;
    assert!(
        log.contains("Name:\tkubernetes.default.svc.cluster.local"),
        "{log}"
    );
    assert!(log.contains("Address: 10.96.0.1"), "{log}");
    assert!(
        log.contains(&format!("system:serviceaccount:{NAMESPACE}:default")),
        "{log}"
    );

    // A Service's ClusterIP routes to a pod serving HTTP; the client finds it by address and name.
    let web = pod(
        "web",
        "mkdir /www && echo hello from web > /www/index.html && exec httpd -f -p 8080 -h /www",
        json!({}),
    );
    let mut web: Value = serde_json::to_value(web)?;
    web["metadata"]["labels"] = json!({"app": "web"});
    web["spec"]["restartPolicy"] = json!("Always");
    pods.create(&PostParams::default(), &serde_json::from_value(web)?)
        .await?;
    let service: Service = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }))?;
    let service = Api::<Service>::namespaced(client.clone(), NAMESPACE)
        .create(&PostParams::default(), &service)
        .await?;
    let cluster_ip = service
        .spec
        .and_then(|s| s.cluster_ip)
        .context("no ClusterIP")?;
    wait_phase(&pods, "web", "Running").await?;
    let get = |target: &str| {
        format!(
            "for i in $(seq 60); do printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {target} 80 \
             | grep -q 'hello from web' && echo reached {target} && break; sleep 0.5; done"
        )
    };
    let client_pod = pod(
        "client",
        &format!("{}; {}", get(&cluster_ip), get("web")),
        json!({}),
    );
    pods.create(&PostParams::default(), &client_pod).await?;
    wait_phase(&pods, "client", "Succeeded").await?;
    let log = pods.logs("client", &LogParams::default()).await?;
    assert!(log.contains(&format!("reached {cluster_ip}")), "{log}");
    assert!(log.contains("reached web"), "{log}");
    Ok(())
}

/// A busybox pod on the real node running `script`, with extra `volumes` and `volumeMounts`.
fn pod(name: &str, script: &str, mounts: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "nodeSelector": {NODE_LABEL: "true"},
            "tolerations": [{"key": TAINT_KEY, "operator": "Exists"}],
            "volumes": mounts["volumes"].as_array().cloned().unwrap_or_default(),
            "containers": [{
                "name": "main",
                "image": BUSYBOX_IMAGE,
                "command": ["sh", "-c", script],
                "volumeMounts": mounts["volumeMounts"].as_array().cloned().unwrap_or_default(),
            }],
        },
    }))
    .expect("a valid pod")
}

async fn wait_phase(pods: &Api<Pod>, name: &str, phase: &str) -> Result<Pod> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let pod = pods.get(name).await?;
        let now = pod.status.as_ref().and_then(|s| s.phase.clone());
        if now.as_deref() == Some(phase) {
            return Ok(pod);
        }
        if now.as_deref() == Some("Failed") || Instant::now() > deadline {
            let log = pods
                .logs(name, &LogParams::default())
                .await
                .unwrap_or_default();
            bail!(
                "pod {name} is {now:?}, not {phase}: {:?}\nlog: {log}",
                pod.status
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What a real node changes on the host: the kubelet's and the bridge's sysctls, the iptables
/// rules and chains of every table, network links and the kubelet's cgroups.
#[derive(Debug, PartialEq)]
struct HostState {
    sysctls: BTreeMap<&'static str, String>,
    iptables: Vec<String>,
    links: Vec<String>,
    cgroups: Vec<String>,
}

impl HostState {
    fn read() -> Self {
        let sysctls = [
            "vm/overcommit_memory",
            "kernel/panic",
            "kernel/panic_on_oops",
            "kernel/keys/root_maxkeys",
            "net/ipv4/ip_forward",
        ]
        .into_iter()
        .map(|key| {
            let value = std::fs::read_to_string(format!("/proc/sys/{key}")).unwrap_or_default();
            (key, value.trim().to_string())
        })
        .collect();
        let mut iptables = Vec::new();
        for tool in ["iptables-save", "ip6tables-save"] {
            for table in ["filter", "nat", "mangle"] {
                let output = std::process::Command::new(tool)
                    .args(["-t", table])
                    .output()
                    .expect("iptables-save runs");
                // Chains and rules; not comments (dates) or packet counters.
                iptables.extend(
                    String::from_utf8_lossy(&output.stdout)
                        .lines()
                        .filter(|l| l.starts_with("-A") || l.starts_with(':'))
                        .map(|l| format!("{tool} {table} {}", l.split(" [").next().unwrap_or(l))),
                );
            }
        }
        let mut links: Vec<String> = std::fs::read_dir("/sys/class/net")
            .map(|dir| {
                dir.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    // A pod's veth goes with its pod; the bridge must go with the node.
                    .filter(|name| !name.starts_with("veth"))
                    .collect()
            })
            .unwrap_or_default();
        links.sort();
        let cgroups = ["cpu", "memory", "pids", "unified", ""]
            .iter()
            .map(|hierarchy| Path::new("/sys/fs/cgroup").join(hierarchy).join("kubepods"))
            .filter(|dir| dir.exists())
            .map(|dir| dir.display().to_string())
            .collect();
        Self {
            sysctls,
            iptables,
            links,
            cgroups,
        }
    }
}
