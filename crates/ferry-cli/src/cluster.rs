//! `ferry cluster`: destination clusters as Argo CD stores them, in `cluster` Secrets of the
//! control namespace (core mode) or through a server's `/api/v1/clusters`. `add` copies a local
//! kubeconfig context's server, CA and credentials into such a Secret (or sends them to the
//! server); listings never show credentials, only what kind they are.

use std::collections::BTreeMap;
use std::process::ExitCode;

use anyhow::{Context, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;
use ferry_types::secrets::{ClusterConfig, ClusterSecret, IN_CLUSTER_SERVER, TlsClientConfig};
use kube::api::DeleteParams;
use kube::config::Kubeconfig;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};

use crate::core::{Core, KubeArgs};
use crate::output::{ListFormat, Table, print_json, print_yaml};
use crate::server::Mode;
use crate::server::apps::items;
use crate::server::client::{ApiClient, segment};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Register the cluster of a kubeconfig context as a destination.
    Add(AddArgs),
    /// List destination clusters.
    List(ListArgs),
    /// Show a destination cluster.
    Get(GetArgs),
    /// Remove a destination cluster.
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
struct AddArgs {
    /// The kubeconfig context whose cluster and credentials are registered.
    context_name: String,
    /// The cluster's name in Applications (default: the context name).
    #[arg(long)]
    name: Option<String>,
    /// Manage only these namespaces (repeatable or comma-separated; default: the whole cluster).
    #[arg(
        long = "namespace-scope",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// With --namespace-scope: manage cluster-scoped resources too.
    #[arg(long)]
    cluster_resources: bool,
    /// The AppProject the cluster belongs to (default: every project).
    #[arg(long)]
    project: Option<String>,
    /// Replace an existing entry for the same server even if it differs.
    #[arg(long)]
    upsert: bool,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args, Debug)]
struct GetArgs {
    /// The cluster's server URL or name.
    cluster: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args, Debug)]
struct RmArgs {
    /// The cluster's server URL or name.
    cluster: String,
}

pub async fn run(kube: &KubeArgs, mode: Mode, args: Args) -> anyhow::Result<ExitCode> {
    if let Mode::Server(session) = mode {
        return run_server(kube, &session.api, args).await;
    }
    let core = Core::connect(kube).await?;
    match args.command {
        Command::Add(args) => {
            let upsert = args.upsert;
            add(&core, cluster_to_add(kube, args)?, upsert).await
        }
        Command::List(args) => list(&core, args.output).await,
        Command::Get(args) => {
            let server = args.cluster.trim_end_matches('/');
            let found = core
                .clusters()
                .await?
                .into_iter()
                .map(|(_, c)| c)
                .chain(std::iter::once(ClusterSecret::in_cluster()))
                .find(|c| c.server == server || c.name == args.cluster)
                .with_context(|| {
                    format!(
                        "cluster {} not found in namespace {}",
                        args.cluster, core.namespace
                    )
                })?;
            print_views(&[ClusterView::from(&found)], args.output)
        }
        Command::Rm(args) => remove(&core, &args.cluster).await,
    }
}

/// The cluster `add` registers: the local kubeconfig context's, with the flags applied.
fn cluster_to_add(kube: &KubeArgs, args: AddArgs) -> anyhow::Result<ClusterSecret> {
    let kubeconfig = kube.load_kubeconfig()?;
    let mut cluster = from_context(&kubeconfig, &args.context_name)?;
    if let Some(name) = args.name {
        cluster.name = name;
    }
    cluster.namespaces = args.namespaces;
    cluster.cluster_resources = args.cluster_resources;
    cluster.project = args.project.unwrap_or_default();
    Ok(cluster)
}

async fn run_server(kube: &KubeArgs, api: &ApiClient, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Add(args) => {
            let upsert = [("upsert", args.upsert.to_string())];
            let cluster = cluster_to_add(kube, args)?;
            // Argo CD's Cluster: the credentials travel in `config`, as in its Secrets.
            let body = json!({
                "server": cluster.server,
                "name": cluster.name,
                "config": cluster.config,
                "namespaces": cluster.namespaces,
                "clusterResources": cluster.cluster_resources,
                "project": cluster.project,
            });
            api.call::<Value>(Method::POST, "/api/v1/clusters", &upsert, Some(&body))
                .await
                .with_context(|| format!("adding cluster {}", cluster.server))?;
            println!("cluster '{}' added", cluster.server);
        }
        Command::List(args) => {
            let list = api.get("/api/v1/clusters", &[]).await?;
            let views: Vec<ClusterView> = items::<Value>(list)?.iter().map(view_of).collect();
            print_views(&views, args.output)?;
        }
        Command::Get(args) => {
            let (path, query) = cluster_path(&args.cluster);
            let cluster: Value = api.get(&path, &query).await?;
            print_views(&[view_of(&cluster)], args.output)?;
        }
        Command::Rm(args) => {
            let (path, query) = cluster_path(&args.cluster);
            api.call::<Value>(Method::DELETE, &path, &query, None::<&Value>)
                .await
                .with_context(|| format!("removing cluster {}", args.cluster))?;
            println!("cluster '{}' removed", args.cluster);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Argo CD's path for a cluster: by server URL, or by name with `id.type=name`.
fn cluster_path(cluster: &str) -> (String, Vec<(&'static str, String)>) {
    let path = format!(
        "/api/v1/clusters/{}",
        segment(cluster.trim_end_matches('/'))
    );
    let query = if cluster.contains("://") {
        Vec::new()
    } else {
        vec![("id.type", "name".to_string())]
    };
    (path, query)
}

/// A cluster as a server shows it (credentials already left out there).
fn view_of(item: &Value) -> ClusterView {
    let text = |key: &str| item[key].as_str().unwrap_or_default().to_string();
    let cluster = ClusterSecret {
        server: text("server"),
        name: text("name"),
        namespaces: serde_json::from_value(item["namespaces"].clone()).unwrap_or_default(),
        cluster_resources: item["clusterResources"].as_bool().unwrap_or(false),
        project: text("project"),
        config: serde_json::from_value(item["config"].clone()).unwrap_or_default(),
        ..ClusterSecret::default()
    };
    ClusterView::from(&cluster)
}

/// A cluster Secret for a kubeconfig context: its cluster's server and CA, its user's client
/// certificate, token or basic auth. Files the kubeconfig points to are read in, since the
/// Secret must stand on its own.
fn from_context(kubeconfig: &Kubeconfig, context_name: &str) -> anyhow::Result<ClusterSecret> {
    let context = kubeconfig
        .contexts
        .iter()
        .find(|c| c.name == context_name)
        .and_then(|c| c.context.as_ref())
        .with_context(|| format!("no context {context_name:?} in the kubeconfig"))?;
    let cluster = kubeconfig
        .clusters
        .iter()
        .find(|c| c.name == context.cluster)
        .and_then(|c| c.cluster.as_ref())
        .with_context(|| {
            format!(
                "context {context_name}: no cluster {:?} in the kubeconfig",
                context.cluster
            )
        })?;
    let server = cluster
        .server
        .clone()
        .with_context(|| format!("context {context_name}: its cluster has no server"))?;
    // The user entry as its kubeconfig keys: kube keeps secret values wrapped, and serializing
    // is how it hands them out.
    let user = match &context.user {
        Some(user) => {
            let entry = kubeconfig
                .auth_infos
                .iter()
                .find(|u| &u.name == user)
                .and_then(|u| u.auth_info.as_ref())
                .with_context(|| {
                    format!("context {context_name}: no user {user:?} in the kubeconfig")
                })?;
            serde_json::to_value(entry)?
        }
        None => Value::Null,
    };
    let field = |key: &str| user.get(key).and_then(Value::as_str).map(str::to_string);
    for (key, what) in [
        ("exec", "an exec plugin"),
        ("auth-provider", "an auth provider"),
    ] {
        if user.get(key).is_some_and(|v| !v.is_null()) {
            bail!(
                "context {context_name} authenticates with {what}, which a cluster Secret cannot carry; use a context with a token or a client certificate"
            );
        }
    }
    let inline_or_file = |data: Option<String>, file: Option<String>, what: &str| match (data, file)
    {
        (Some(data), _) => Ok(Some(data)),
        (None, Some(path)) => std::fs::read(&path)
            .map(|bytes| Some(STANDARD.encode(bytes)))
            .with_context(|| format!("context {context_name}: reading {what} {path}")),
        (None, None) => Ok(None),
    };
    let bearer_token = match (field("token"), field("tokenFile")) {
        (Some(token), _) => Some(token),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .with_context(|| format!("context {context_name}: reading token file {path}"))?
                .trim()
                .to_string(),
        ),
        (None, None) => None,
    };
    Ok(ClusterSecret {
        name: context_name.to_string(),
        server: server.trim_end_matches('/').to_string(),
        config: ClusterConfig {
            bearer_token,
            username: field("username"),
            password: field("password"),
            tls_client_config: TlsClientConfig {
                insecure: cluster.insecure_skip_tls_verify.unwrap_or(false),
                server_name: cluster.tls_server_name.clone(),
                ca_data: inline_or_file(
                    cluster.certificate_authority_data.clone(),
                    cluster.certificate_authority.clone(),
                    "certificate authority",
                )?,
                cert_data: inline_or_file(
                    field("client-certificate-data"),
                    field("client-certificate"),
                    "client certificate",
                )?,
                key_data: inline_or_file(
                    field("client-key-data"),
                    field("client-key"),
                    "client key",
                )?,
                unknown: BTreeMap::new(),
            },
            unknown: BTreeMap::new(),
        },
        ..Default::default()
    })
}

async fn add(core: &Core, cluster: ClusterSecret, upsert: bool) -> anyhow::Result<ExitCode> {
    core.prepare().await?;
    let existing = core
        .clusters()
        .await?
        .into_iter()
        .find(|(_, c)| c.server == cluster.server);
    let secret = cluster.to_secret(&core.namespace);
    let what = format!("cluster '{}'", cluster.server);
    core.save_secret(secret, existing, &cluster, upsert, &what)
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// A cluster as listings show it: what kind of credentials, never the credentials.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ClusterView {
    server: String,
    name: String,
    namespaces: Vec<String>,
    cluster_resources: bool,
    project: String,
    credentials: String,
}

impl From<&ClusterSecret> for ClusterView {
    fn from(cluster: &ClusterSecret) -> Self {
        Self {
            server: cluster.server.clone(),
            name: cluster.name.clone(),
            namespaces: cluster.namespaces.clone(),
            cluster_resources: cluster.cluster_resources,
            project: cluster.project.clone(),
            credentials: credential_kind(cluster),
        }
    }
}

/// `client certificate`, `bearer token`, ... or the unsupported config fields in use.
fn credential_kind(cluster: &ClusterSecret) -> String {
    let config = &cluster.config;
    let mut kinds: Vec<&str> = Vec::new();
    if config.tls_client_config.cert_data.is_some() {
        kinds.push("client certificate");
    }
    if config.bearer_token.is_some() {
        kinds.push("bearer token");
    }
    if config.username.is_some() || config.password.is_some() {
        kinds.push("basic auth");
    }
    kinds.extend(config.unknown.keys().map(String::as_str));
    match (kinds.is_empty(), cluster.server == IN_CLUSTER_SERVER) {
        (true, true) => "in-cluster service account".to_string(),
        (true, false) => "none".to_string(),
        (false, _) => kinds.join(", "),
    }
}

async fn list(core: &Core, output: ListFormat) -> anyhow::Result<ExitCode> {
    let mut clusters: Vec<ClusterSecret> =
        core.clusters().await?.into_iter().map(|(_, c)| c).collect();
    clusters.sort_by(|a, b| a.server.cmp(&b.server));
    // Argo CD's implicit entry, unless a Secret configures the in-cluster server.
    if !clusters.iter().any(|c| c.server == IN_CLUSTER_SERVER) {
        clusters.insert(0, ClusterSecret::in_cluster());
    }
    let views: Vec<ClusterView> = clusters.iter().map(ClusterView::from).collect();
    print_views(&views, output)
}

fn print_views(views: &[ClusterView], output: ListFormat) -> anyhow::Result<ExitCode> {
    match output {
        ListFormat::Json => print_json(&views)?,
        ListFormat::Yaml => print_yaml(&views)?,
        ListFormat::Name => {
            for view in views {
                println!("{}", view.name);
            }
        }
        ListFormat::Wide => print!("{}", cluster_table(views).render()),
    }
    Ok(ExitCode::SUCCESS)
}

fn cluster_table(views: &[ClusterView]) -> Table {
    let mut table = Table::new(&["SERVER", "NAME", "NAMESPACES", "PROJECT", "CREDENTIALS"]);
    for view in views {
        let namespaces = if view.namespaces.is_empty() {
            "all".to_string()
        } else {
            view.namespaces.join(",")
        };
        table.row(vec![
            view.server.clone(),
            view.name.clone(),
            namespaces,
            view.project.clone(),
            view.credentials.clone(),
        ]);
    }
    table
}

async fn remove(core: &Core, cluster: &str) -> anyhow::Result<ExitCode> {
    let server = cluster.trim_end_matches('/');
    let matching: Vec<(String, ClusterSecret)> = core
        .clusters()
        .await?
        .into_iter()
        .filter(|(_, c)| c.server == server || c.name == cluster)
        .collect();
    if matching.is_empty() {
        if server == IN_CLUSTER_SERVER || cluster == ferry_types::secrets::IN_CLUSTER_NAME {
            bail!("the in-cluster cluster is implicit and cannot be removed");
        }
        bail!(
            "cluster {cluster} not found in namespace {}",
            core.namespace
        );
    }
    for (name, found) in matching {
        core.secrets()
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting Secret {name} of cluster {}", found.server))?;
        println!("cluster '{}' removed", found.server);
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: prod
clusters:
  - name: prod-cluster
    cluster: {server: "https://prod.example.com:6443/", certificate-authority-data: Q0FEQVRB, tls-server-name: api.prod}
contexts:
  - name: prod
    context: {cluster: prod-cluster, user: admin}
  - name: exec
    context: {cluster: prod-cluster, user: sso}
users:
  - name: admin
    user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ, token: tok}
  - name: sso
    user: {exec: {apiVersion: client.authentication.k8s.io/v1, command: login}}
"#;

    #[test]
    fn contexts_become_cluster_secrets() {
        let kubeconfig = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let cluster = from_context(&kubeconfig, "prod").unwrap();
        assert_eq!(cluster.name, "prod");
        assert_eq!(cluster.server, "https://prod.example.com:6443");
        let tls = &cluster.config.tls_client_config;
        assert_eq!(tls.ca_data.as_deref(), Some("Q0FEQVRB"));
        assert_eq!(tls.cert_data.as_deref(), Some("Q0VSVA=="));
        assert_eq!(tls.key_data.as_deref(), Some("S0VZ"));
        assert_eq!(tls.server_name.as_deref(), Some("api.prod"));
        assert_eq!(cluster.config.bearer_token.as_deref(), Some("tok"));
        assert_eq!(
            credential_kind(&cluster),
            "client certificate, bearer token"
        );

        let err = from_context(&kubeconfig, "exec").unwrap_err().to_string();
        assert!(err.contains("authenticates with an exec plugin"), "{err}");
        let err = from_context(&kubeconfig, "nope").unwrap_err().to_string();
        assert_eq!(err, "no context \"nope\" in the kubeconfig");
    }

    #[test]
    fn files_the_kubeconfig_names_are_read_in() {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.crt");
        std::fs::write(&ca, "CA PEM").unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, "file-token\n").unwrap();
        let kubeconfig = Kubeconfig::from_yaml(&format!(
            "clusters: [{{name: c, cluster: {{server: 'https://c', certificate-authority: {}}}}}]\n\
             contexts: [{{name: x, context: {{cluster: c, user: u}}}}]\n\
             users: [{{name: u, user: {{tokenFile: {}}}}}]\n",
            ca.display(),
            token.display()
        ))
        .unwrap();
        let cluster = from_context(&kubeconfig, "x").unwrap();
        assert_eq!(
            cluster.config.tls_client_config.ca_data.as_deref(),
            Some(STANDARD.encode("CA PEM").as_str())
        );
        assert_eq!(cluster.config.bearer_token.as_deref(), Some("file-token"));
    }

    #[test]
    fn listings_never_show_credentials() {
        let kubeconfig = Kubeconfig::from_yaml(KUBECONFIG).unwrap();
        let cluster = from_context(&kubeconfig, "prod").unwrap();
        let views = [
            ClusterView::from(&ClusterSecret::in_cluster()),
            ClusterView::from(&cluster),
        ];
        let shown = format!(
            "{}{}",
            cluster_table(&views).render(),
            serde_json::to_string(&views).unwrap()
        );
        for secret in ["S0VZ", "tok\"", "Q0VSVA"] {
            assert!(!shown.contains(secret), "{secret} shown: {shown}");
        }
        assert!(
            shown.contains("https://kubernetes.default.svc  in-cluster  all"),
            "{shown}"
        );
    }
}
