//! Core mode: the CLI talks to the Kubernetes API with the user's kubeconfig, as `argocd --core`
//! does, instead of going through a ferry server. The control namespace holds Applications,
//! AppProjects and the repository and cluster Secrets.

use std::collections::BTreeMap;
use std::ffi::OsString;

use anyhow::{Context, bail};
use ferry_appstate::argocd_cm::{ARGOCD_CM, ArgoSettings};
use ferry_git::{Credentials, TlsCerts};
use ferry_render::with_repo_secret;
use ferry_runtime::UpdateError;
use ferry_runtime::secret_store::{self as store, SaveError, Saved};
use ferry_types::allowed_namespaces::AllowedNamespaces;
use ferry_types::application::ApplicationDestination;
use ferry_types::secrets::{
    ClusterSecret, IN_CLUSTER_NAME, IN_CLUSTER_SERVER, RepoSecret, SECRET_TYPE_CLUSTER,
    SECRET_TYPE_REPO_CREDS, SECRET_TYPE_REPOSITORY,
};
use ferry_types::{AppProject, Application};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Secret};
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The field manager ferry's CLI writes with.
pub const FIELD_MANAGER: &str = "ferry";
/// Argo CD's ConfigMap of trusted ssh host keys.
const KNOWN_HOSTS_CM: &str = "argocd-ssh-known-hosts-cm";
const TLS_CERTS_CM: &str = "argocd-tls-certs-cm";
/// Where Argo CD's components read their parameters; core mode takes `application.namespaces`.
const CMD_PARAMS_CM: &str = "argocd-cmd-params-cm";
const DEFAULT_CONTROL_NAMESPACE: &str = "argocd";

/// The help section of the options below.
const HEADING: &str = "Control plane";

/// Options every core-mode command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct KubeArgs {
    /// Kubeconfig file(s), `:`-separated like KUBECONFIG (default: kube's usual lookup).
    #[arg(long, env = "KUBECONFIG", global = true, value_name = "FILE", help_heading = HEADING)]
    pub kubeconfig: Option<OsString>,
    /// Kubeconfig context (default: the current context).
    #[arg(long, global = true, help_heading = HEADING)]
    pub context: Option<String>,
    /// Control namespace holding Applications, AppProjects, repository and cluster Secrets
    /// [env: FERRY_NAMESPACE] [default: argocd].
    // No clap default or env here: clap copies a global's value into a subcommand's own arg of
    // the same id, and `ferry render --namespace` (the destination namespace) is one.
    #[arg(
        long = "namespace",
        short = 'N',
        global = true,
        value_name = "NAMESPACE",
        help_heading = HEADING
    )]
    pub namespace: Option<String>,
}

impl KubeArgs {
    pub fn control_namespace(&self) -> String {
        self.namespace
            .clone()
            .or_else(|| std::env::var("FERRY_NAMESPACE").ok())
            .filter(|ns| !ns.is_empty())
            .unwrap_or_else(|| DEFAULT_CONTROL_NAMESPACE.to_string())
    }

    /// The kubeconfig: the given files merged (first wins, as kubectl does), else kube's
    /// default location.
    pub fn load_kubeconfig(&self) -> anyhow::Result<Kubeconfig> {
        let Some(paths) = &self.kubeconfig else {
            return Kubeconfig::read().context("reading the kubeconfig");
        };
        let mut merged = Kubeconfig::default();
        for path in std::env::split_paths(paths).filter(|p| !p.as_os_str().is_empty()) {
            let config = Kubeconfig::read_from(&path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            merged = merged.merge(config)?;
        }
        Ok(merged)
    }

    /// The name of the kubeconfig user the chosen context uses, if it can be told.
    fn kubeconfig_user(&self) -> Option<String> {
        let kubeconfig = self.load_kubeconfig().ok()?;
        let context = self
            .context
            .clone()
            .or_else(|| kubeconfig.current_context.clone())?;
        kubeconfig
            .contexts
            .iter()
            .find(|c| c.name == context)?
            .context
            .as_ref()?
            .user
            .clone()
    }
}

/// A connection to the control cluster.
pub struct Core {
    pub client: Client,
    pub namespace: String,
    args: KubeArgs,
}

/// A cluster applications deploy to, with a client for it.
pub struct Destination {
    pub client: Client,
    pub server: String,
    pub name: String,
}

impl Core {
    pub async fn connect(args: &KubeArgs) -> anyhow::Result<Self> {
        let config = if args.kubeconfig.is_none() && args.context.is_none() {
            // kube's inference: KUBECONFIG, ~/.kube/config, else the in-cluster service account.
            Config::infer()
                .await
                .context("no Kubernetes configuration found")?
        } else {
            let options = KubeConfigOptions {
                context: args.context.clone(),
                ..Default::default()
            };
            Config::from_custom_kubeconfig(args.load_kubeconfig()?, &options)
                .await
                .context("loading the kubeconfig")?
        };
        Ok(Self {
            client: Client::try_from(config).context("creating a Kubernetes client")?,
            namespace: args.control_namespace(),
            args: args.clone(),
        })
    }

    pub fn apps(&self) -> Api<Application> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// The Applications API for the app `name` names, and its name there: `<namespace>/<name>`
    /// is an app outside the control namespace (apps in any namespace), which core mode serves
    /// only where argocd-cmd-params-cm's `application.namespaces` allows, as Argo CD's does.
    pub async fn app_api<'n>(&self, name: &'n str) -> anyhow::Result<(Api<Application>, &'n str)> {
        let Some((namespace, plain)) = name.split_once('/') else {
            return Ok((self.apps(), name));
        };
        if namespace != self.namespace && !self.app_namespaces().await?.allows(namespace) {
            bail!(
                "app {name}: namespace '{namespace}' is not permitted (not in \
                 {CMD_PARAMS_CM}'s application.namespaces)"
            );
        }
        Ok((Api::namespaced(self.client.clone(), namespace), plain))
    }

    /// The namespaces whose apps core mode serves besides the control namespace.
    pub async fn app_namespaces(&self) -> anyhow::Result<AllowedNamespaces> {
        let data = self.config_map_data(CMD_PARAMS_CM).await?;
        let entries: Vec<String> = data
            .get("application.namespaces")
            .map(|list| list.split(',').map(str::to_string).collect())
            .unwrap_or_default();
        AllowedNamespaces::new(&self.namespace, &entries)
            .map_err(|e| anyhow::anyhow!("{CMD_PARAMS_CM} application.namespaces: {e}"))
    }

    pub fn projects(&self) -> Api<AppProject> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Writes a repository or cluster Secret as `argocd ... add` does: created when `existing`
    /// (the Secret's name and what it holds) is absent, left alone when it holds `wanted`
    /// already, replaced under its own name only with `upsert`. `what` names it in messages
    /// (`cluster 'https://…'`).
    pub async fn save_secret<T: PartialEq>(
        &self,
        secret: Secret,
        existing: Option<(String, T)>,
        wanted: &T,
        upsert: bool,
        what: &str,
    ) -> anyhow::Result<()> {
        match store::save(&self.secrets(), secret, existing, wanted, upsert).await {
            Ok(Saved::Created(_)) => println!("{what} added"),
            Ok(Saved::Unchanged) => println!("{what} unchanged"),
            Ok(Saved::Updated(_)) => println!("{what} updated"),
            Err(SaveError::Differs) => {
                bail!("{what} exists with different settings; use --upsert to replace them")
            }
            Err(SaveError::Kube(err)) => {
                return Err(err).with_context(|| format!("writing the Secret of {what}"));
            }
        }
        Ok(())
    }

    /// Who operations are initiated by: `$USER`, else the kubeconfig user, else `ferry-cli`.
    pub fn username(&self) -> String {
        std::env::var("USER")
            .ok()
            .filter(|u| !u.is_empty())
            .or_else(|| self.args.kubeconfig_user())
            .unwrap_or_else(|| "ferry-cli".to_string())
    }

    /// Makes the control plane usable for commands that write: the control namespace, the
    /// Application and AppProject CRDs and the `default` AppProject, each only when missing
    /// (an existing Argo CD installation is left as it is).
    pub async fn prepare(&self) -> anyhow::Result<()> {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        if !exists(namespaces.get_opt(&self.namespace).await)? {
            let namespace = Namespace {
                metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
                    name: Some(self.namespace.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            create_unless_exists(&namespaces, &namespace)
                .await
                .with_context(|| format!("creating namespace {}", self.namespace))?;
            eprintln!("created namespace {}", self.namespace);
        }
        for name in ferry_runtime::install_crds(&self.client, FIELD_MANAGER).await? {
            eprintln!("installed CustomResourceDefinition {name}");
        }
        if !exists(self.projects().get_opt("default").await)? {
            create_unless_exists(
                &self.projects(),
                &AppProject::default_project(&self.namespace),
            )
            .await
            .context("creating the default AppProject")?;
            eprintln!("created AppProject default");
        }
        Ok(())
    }

    /// The Secrets of the given `argocd.argoproj.io/secret-type`s.
    pub async fn typed_secrets(&self, types: &[&str]) -> anyhow::Result<Vec<Secret>> {
        store::list_typed(&self.secrets(), types)
            .await
            .with_context(|| format!("listing {} Secrets in {}", types.join("/"), self.namespace))
    }

    /// Registered clusters with the names of their Secrets. Malformed Secrets are reported and
    /// skipped rather than failing every command.
    pub async fn clusters(&self) -> anyhow::Result<Vec<(String, ClusterSecret)>> {
        let mut clusters = Vec::new();
        for secret in self.typed_secrets(&[SECRET_TYPE_CLUSTER]).await? {
            match ClusterSecret::from_secret(&secret) {
                Ok(cluster) => clusters.push((secret.metadata.name.unwrap_or_default(), cluster)),
                Err(err) => eprintln!("warning: ignoring {err}"),
            }
        }
        Ok(clusters)
    }

    /// Repository Secrets of either kind, with the names of their Secrets.
    pub async fn repositories(&self) -> anyhow::Result<Vec<(String, RepoSecret)>> {
        let mut repos = Vec::new();
        let types = [SECRET_TYPE_REPOSITORY, SECRET_TYPE_REPO_CREDS];
        for secret in self.typed_secrets(&types).await? {
            match RepoSecret::from_secret(&secret) {
                Ok(repo) => repos.push((secret.metadata.name.unwrap_or_default(), repo)),
                Err(err) => eprintln!("warning: ignoring {err}"),
            }
        }
        Ok(repos)
    }

    /// Git credentials from the repository Secrets and the ssh known hosts ConfigMap. Without
    /// permission to read them, public repositories still work, so that is a warning.
    pub async fn git_credentials(&self) -> anyhow::Result<Credentials> {
        let mut credentials = Credentials::new();
        match self.repositories().await {
            Ok(repos) => {
                for (_, repo) in repos {
                    // Scoped to the Secret's `project`, if any: see Credentials::lookup.
                    credentials = with_repo_secret(credentials, &repo);
                }
            }
            Err(err) if is_forbidden(&err) => {
                eprintln!("warning: not using repository credentials: {err:#}");
            }
            Err(err) => return Err(err),
        }
        self.with_trusted_hosts(credentials).await
    }

    /// Adds the trusted ssh host keys of `argocd-ssh-known-hosts-cm` and the TLS certificates
    /// trusted per host of `argocd-tls-certs-cm`, when there are any.
    pub async fn with_trusted_hosts(
        &self,
        credentials: Credentials,
    ) -> anyhow::Result<Credentials> {
        let known_hosts = self
            .config_map_data(KNOWN_HOSTS_CM)
            .await?
            .remove("ssh_known_hosts");
        let credentials = match known_hosts {
            Some(known_hosts) => credentials
                .with_known_hosts(&known_hosts)
                .with_context(|| format!("ConfigMap {KNOWN_HOSTS_CM}"))?,
            None => credentials,
        };
        let (certs, errors) = TlsCerts::parse(&self.config_map_data(TLS_CERTS_CM).await?);
        for err in errors {
            eprintln!("warning: ConfigMap {TLS_CERTS_CM}: ignoring the entry: {err}");
        }
        Ok(credentials.with_tls_certs(certs))
    }

    /// A ConfigMap's data in the control namespace; nothing when it is missing or forbidden.
    async fn config_map_data(&self, name: &str) -> anyhow::Result<BTreeMap<String, String>> {
        let config_maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.namespace);
        match config_maps.get_opt(name).await {
            Ok(cm) => Ok(cm.and_then(|cm| cm.data).unwrap_or_default()),
            Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(BTreeMap::new()),
            Err(err) => Err(err).context(format!("reading ConfigMap {name}")),
        }
    }

    /// `argocd-cm`'s data (empty when it is missing or not readable).
    pub async fn argocd_cm_data(&self) -> anyhow::Result<BTreeMap<String, String>> {
        self.config_map_data(ARGOCD_CM).await
    }

    /// What `argocd-cm` says about comparing apps (system-wide ignoreDifferences, health
    /// checks, the tracking method), read as the controller reads it.
    pub async fn argo_settings(&self) -> anyhow::Result<ArgoSettings> {
        ArgoSettings::from_data(&self.config_map_data(ARGOCD_CM).await?)
    }

    /// The cluster a destination names, with a client for it. The in-cluster destination is the
    /// cluster of the kubeconfig (the control plane's own); others come from cluster Secrets.
    pub async fn destination(&self, dest: &ApplicationDestination) -> anyhow::Result<Destination> {
        let clusters = self.clusters().await?;
        let cluster = resolve_cluster(&clusters, dest)?;
        if cluster.server == IN_CLUSTER_SERVER {
            return Ok(Destination {
                client: self.client.clone(),
                server: cluster.server,
                name: cluster.name,
            });
        }
        let kubeconfig = cluster.to_kubeconfig().map_err(anyhow::Error::msg)?;
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .with_context(|| format!("cluster {} ({})", cluster.name, cluster.server))?;
        Ok(Destination {
            client: Client::try_from(config)
                .with_context(|| format!("cluster {} ({})", cluster.name, cluster.server))?,
            server: cluster.server,
            name: cluster.name,
        })
    }
}

/// The registered cluster a destination names (by name, else by server), the implicit
/// in-cluster entry included unless a Secret stands in for it.
pub fn resolve_cluster(
    clusters: &[(String, ClusterSecret)],
    dest: &ApplicationDestination,
) -> anyhow::Result<ClusterSecret> {
    let server = dest.server.trim_end_matches('/');
    let found = if !dest.name.is_empty() {
        clusters.iter().find(|(_, c)| c.name == dest.name)
    } else {
        clusters.iter().find(|(_, c)| c.server == server)
    };
    if let Some((_, cluster)) = found {
        return Ok(cluster.clone());
    }
    if dest.name == IN_CLUSTER_NAME || (dest.name.is_empty() && server == IN_CLUSTER_SERVER) {
        return Ok(ClusterSecret::in_cluster());
    }
    match (dest.name.as_str(), server) {
        ("", "") => bail!("the destination names no cluster (set a server or a name)"),
        ("", server) => {
            bail!("no cluster with server {server} is registered (add it with `ferry cluster add`)")
        }
        (name, _) => {
            bail!("no cluster named {name:?} is registered (add it with `ferry cluster add`)")
        }
    }
}

/// Whether a lookup found the object. Without permission to look (users limited to the control
/// namespace cannot read namespaces or CRDs) it is taken to be there: what really is missing
/// then fails later with the API server's own error.
fn exists<K>(lookup: kube::Result<Option<K>>) -> anyhow::Result<bool> {
    match lookup {
        Ok(found) => Ok(found.is_some()),
        Err(kube::Error::Api(status)) if status.is_forbidden() => Ok(true),
        Err(err) => Err(err.into()),
    }
}

/// Creates an object; one that appeared in the meantime is fine.
async fn create_unless_exists<K>(api: &Api<K>, object: &K) -> anyhow::Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    match api.create(&PostParams::default(), object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
        Err(err) => Err(err.into()),
    }
}

/// Changes an object with [`ferry_runtime::update`] (a read-change-write guarded by the
/// resourceVersion, retried on conflicts). Returns the object as written and whether anything
/// changed. `what` names the kind in errors.
pub async fn update<K>(
    api: &Api<K>,
    what: &str,
    name: &str,
    change: impl FnMut(&mut K) -> anyhow::Result<()>,
) -> anyhow::Result<(K, bool)>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + serde::Serialize + std::fmt::Debug,
{
    ferry_runtime::update(api, name, change)
        .await
        .map_err(|err| match err {
            UpdateError::NotFound => anyhow::anyhow!("{what} {name} not found"),
            UpdateError::Change(err) => err,
            UpdateError::Kube(err) => {
                anyhow::Error::new(err).context(format!("updating {what} {name}"))
            }
            UpdateError::KeptChanging { attempts } => anyhow::anyhow!(
                "{what} {name} kept changing while being updated ({attempts} attempts); try again"
            ),
        })
}

/// Whether an error chain ends in an API "forbidden".
pub fn is_forbidden(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<kube::Error>(), Some(kube::Error::Api(status)) if status.is_forbidden())
    })
}

/// Whether an error chain ends in an API "not found".
pub fn is_not_found(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        matches!(cause.downcast_ref::<kube::Error>(), Some(kube::Error::Api(status)) if status.is_not_found())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dest(server: &str, name: &str) -> ApplicationDestination {
        ApplicationDestination {
            server: server.into(),
            name: name.into(),
            ..Default::default()
        }
    }

    #[test]
    fn destinations_resolve_by_name_or_server_with_in_cluster_implicit() {
        let prod = ClusterSecret {
            name: "prod".into(),
            server: "https://prod:6443".into(),
            ..Default::default()
        };
        let clusters = vec![("cluster-prod-1".to_string(), prod.clone())];
        assert_eq!(resolve_cluster(&clusters, &dest("", "prod")).unwrap(), prod);
        assert_eq!(
            resolve_cluster(&clusters, &dest("https://prod:6443/", "")).unwrap(),
            prod
        );
        assert_eq!(
            resolve_cluster(&clusters, &dest("", "in-cluster")).unwrap(),
            ClusterSecret::in_cluster()
        );
        assert_eq!(
            resolve_cluster(&clusters, &dest(IN_CLUSTER_SERVER, "")).unwrap(),
            ClusterSecret::in_cluster()
        );
        let err = resolve_cluster(&clusters, &dest("https://other", ""))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "no cluster with server https://other is registered (add it with `ferry cluster add`)"
        );
    }
}
