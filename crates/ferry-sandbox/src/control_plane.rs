//! Starting the components in order, each on free loopback ports, and waiting until the cluster
//! can run workloads: API ready, nodes Ready, the default ServiceAccount in place.

use std::fs;
use std::net::{IpAddr, TcpListener};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use k8s_openapi::api::core::v1::ServiceAccount;
use kube::Api;
use kube::config::{
    AuthInfo, Cluster, Context as KubeContext, Kubeconfig, NamedAuthInfo, NamedCluster,
    NamedContext,
};

use crate::pki::{self, SERVICE_CIDR};
use crate::{Sandbox, UpOptions, nodes, readyz, real_node};

/// Component names, in start order (`down` stops them in reverse).
pub const COMPONENTS: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

pub async fn start(sandbox: &Sandbox, bin: &Path, opts: &UpOptions) -> Result<()> {
    let dir = sandbox.dir();
    let host = match opts.real_node {
        true => Some(real_node::Host::discover()?),
        false => None,
    };
    let pki_dir = dir.join("pki");
    pki::ensure(&pki_dir)?;
    // Pods reach the API server on the node's address.
    let node_ips: Vec<IpAddr> = host.iter().map(|h| h.node_ip.into()).collect();
    pki::ensure_serving(&pki_dir, &node_ips)?;
    let pki = |file: &str| pki_dir.join(file).display().to_string();

    // Cluster state does not outlive `down`: every start is a clean cluster.
    let etcd_data = dir.join("etcd");
    if etcd_data.exists() {
        fs::remove_dir_all(&etcd_data)?;
    }
    let [etcd_client, etcd_peer, apiserver] = free_ports()?;
    let server = format!("https://127.0.0.1:{apiserver}");
    let kubeconfig = sandbox.kubeconfig();
    write_kubeconfig(&kubeconfig, sandbox.name(), &server, &pki_dir)?;
    let kubeconfig = kubeconfig.display().to_string();
    if opts.real_node {
        real_node::prepare(sandbox)?;
        fs::write(dir.join("real-node"), "")?;
    }
    // With a real node, the API server also listens where pods reach it, and advertises that
    // address as the `kubernetes` Service's endpoint.
    let (bind, advertise) = match &host {
        Some(host) => ("0.0.0.0".to_string(), host.node_ip.to_string()),
        None => ("127.0.0.1".to_string(), "127.0.0.1".to_string()),
    };

    let etcd_url = format!("http://127.0.0.1:{etcd_client}");
    let peer_url = format!("http://127.0.0.1:{etcd_peer}");
    spawn(
        sandbox,
        bin,
        "etcd",
        &[
            "--name=sandbox".into(),
            format!("--data-dir={}", etcd_data.display()),
            format!("--listen-client-urls={etcd_url}"),
            format!("--advertise-client-urls={etcd_url}"),
            format!("--listen-peer-urls={peer_url}"),
            format!("--initial-advertise-peer-urls={peer_url}"),
            format!("--initial-cluster=sandbox={peer_url}"),
            // A sandbox trades durability for speed: its state is thrown away on `down` anyway.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
        ],
    )?;

    spawn(
        sandbox,
        bin,
        "kube-apiserver",
        &[
            format!("--etcd-servers={etcd_url}"),
            format!("--bind-address={bind}"),
            format!("--advertise-address={advertise}"),
            format!("--secure-port={apiserver}"),
            format!("--cert-dir={}", pki_dir.display()),
            format!("--tls-cert-file={}", pki(pki::SERVING_CERT)),
            format!("--tls-private-key-file={}", pki(pki::SERVING_KEY)),
            format!("--client-ca-file={}", pki(pki::CA_CERT)),
            format!("--service-account-key-file={}", pki(pki::SA_PUB)),
            format!("--service-account-signing-key-file={}", pki(pki::SA_KEY)),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            "--authorization-mode=Node,RBAC".into(),
            "--allow-privileged=true".into(),
            // Fewer moving parts and less memory for a single-user cluster.
            "--enable-priority-and-fairness=false".into(),
            "--profiling=false".into(),
        ],
    )?;
    let client = crate::client_for(Path::new(&kubeconfig)).await?;
    wait_component(sandbox, "kube-apiserver", opts, || async {
        Ok(readyz(&client).await.then_some(()))
    })
    .await?;
    if let Some(host) = &host {
        real_node::join(sandbox, bin, host, opts.timeout).await?;
    }

    spawn(
        sandbox,
        bin,
        "kube-controller-manager",
        &[
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
            format!("--service-account-private-key-file={}", pki(pki::SA_KEY)),
            format!("--root-ca-file={}", pki(pki::CA_CERT)),
            format!("--service-cluster-ip-range={SERVICE_CIDR}"),
            // Simulated nodes never fail; on a busy machine kwok's heartbeats can lag, and the
            // node lifecycle controller would then mark every pod NotReady for good.
            "--node-monitor-grace-period=1h".into(),
            "--profiling=false".into(),
        ],
    )?;
    spawn(
        sandbox,
        bin,
        "kube-scheduler",
        &[
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            "--secure-port=0".into(),
            "--leader-elect=false".into(),
            "--profiling=false".into(),
        ],
    )?;
    // An empty configuration: kwok then uses its built-in stages (nodes Ready, pods Running and
    // Ready at once, Job pods Succeeded, deleted pods removed).
    let kwok_config = dir.join("kwok.yaml");
    fs::write(
        &kwok_config,
        "apiVersion: config.kwok.x-k8s.io/v1alpha1\nkind: KwokConfiguration\noptions: {}\n",
    )?;
    spawn(
        sandbox,
        bin,
        "kwok",
        &[
            format!("--kubeconfig={kubeconfig}"),
            format!("--config={}", kwok_config.display()),
            "--manage-all-nodes=false".into(),
            format!(
                "--manage-nodes-with-annotation-selector={}=fake",
                nodes::KWOK_ANNOTATION
            ),
            "--node-ip=127.0.0.1".into(),
            "--server-address=".into(),
        ],
    )?;

    nodes::create(&client, opts.nodes).await?;
    let want = opts.nodes as usize;
    wait_component(sandbox, "kwok", opts, || async {
        Ok((nodes::ready_count(&client).await? >= want).then_some(()))
    })
    .await?;
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    wait_component(sandbox, "kube-controller-manager", opts, || async {
        Ok(accounts.get_opt("default").await?.map(|_| ()))
    })
    .await?;
    if let Some(host) = &host {
        real_node::wait_ready(sandbox, &client, host, opts.timeout).await?;
    }
    Ok(())
}

fn spawn(sandbox: &Sandbox, bin: &Path, name: &str, args: &[String]) -> Result<()> {
    sandbox.component(name).spawn(&bin.join(name), args)?;
    Ok(())
}

/// Waits for `check`, failing early (with its exit status and the log's tail) if the component
/// dies meanwhile.
async fn wait_component<F, Fut>(
    sandbox: &Sandbox,
    name: &str,
    opts: &UpOptions,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<()>>>,
{
    let component = sandbox.component(name);
    let deadline = Instant::now() + opts.timeout;
    loop {
        let last = check().await;
        if let Ok(Some(())) = last {
            return Ok(());
        }
        if component.running().is_none() {
            bail!("sandbox {}: {}", sandbox.name(), component.exit_report());
        }
        if Instant::now() > deadline {
            let cause = last.err().map(|e| format!(" ({e:#})")).unwrap_or_default();
            bail!(
                "sandbox {}: {name} was not ready after {:?}{cause}; last lines of {}:\n{}",
                sandbox.name(),
                opts.timeout,
                component.log_file().display(),
                component.log_tail(20)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Free loopback ports, found by binding port 0 (the listeners close before the components
/// start; a collision in that window makes the component fail loudly, and `up` picks again).
fn free_ports<const N: usize>() -> Result<[u16; N]> {
    let listeners = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut ports = [0; N];
    for (port, listener) in ports.iter_mut().zip(&listeners) {
        *port = listener.local_addr()?.port();
    }
    Ok(ports)
}

fn write_kubeconfig(path: &Path, name: &str, server: &str, pki_dir: &Path) -> Result<()> {
    let context = format!("ferry-sandbox-{name}");
    let file = |f: &str| Some(pki_dir.join(f).display().to_string());
    let config = Kubeconfig {
        clusters: vec![NamedCluster {
            name: context.clone(),
            cluster: Some(Cluster {
                server: Some(server.to_string()),
                certificate_authority: file(pki::CA_CERT),
                ..Default::default()
            }),
            ..Default::default()
        }],
        auth_infos: vec![NamedAuthInfo {
            name: context.clone(),
            auth_info: Some(AuthInfo {
                client_certificate: file(pki::ADMIN_CERT),
                client_key: file(pki::ADMIN_KEY),
                ..Default::default()
            }),
            ..Default::default()
        }],
        contexts: vec![NamedContext {
            name: context.clone(),
            context: Some(KubeContext {
                cluster: context.clone(),
                user: Some(context.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }],
        current_context: Some(context),
        kind: Some("Config".into()),
        api_version: Some("v1".into()),
        ..Default::default()
    };
    let yaml = serde_yaml::to_string(&config)?;
    fs::write(path, yaml).with_context(|| format!("writing {}", path.display()))
}
