use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use ferry_leader::LeaderElection;
use ferry_types::application_set::ApplicationsSyncPolicy;

/// The Lease replicas of the ApplicationSet controller compete for.
const LEASE: &str = "ferry-applicationset-controller";

/// Generates Argo CD Applications from ApplicationSets.
#[derive(Parser, Debug)]
#[command(name = "ferry-appset-controller", version, about)]
struct Args {
    /// Namespace of the ApplicationSets, AppProjects and repository/cluster Secrets.
    #[arg(long, short = 'n', env = "FERRY_NAMESPACE", default_value = "argocd")]
    namespace: String,
    /// Kubeconfig of the cluster holding the ApplicationSets (default: in-cluster or
    /// ~/.kube/config).
    #[arg(long, env = "KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Context within the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// Where Git mirrors and checkouts live.
    #[arg(long, env = "FERRY_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Most bytes a git generator's checkout may hold (0: no limit).
    #[arg(long, default_value_t = 0)]
    max_repo_size: u64,
    /// ApplicationSets reconciled at once.
    #[arg(long, default_value_t = 10)]
    concurrent_reconciliations: u16,
    /// Reconcile only while holding the Lease `ferry-applicationset-controller`; other replicas
    /// wait as standbys (Argo CD's flag).
    #[arg(long, env = "ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_LEADER_ELECTION")]
    enable_leader_election: bool,
    /// Honour the RollingSync strategy: the controller syncs the generated Applications step by
    /// step (Argo CD's flag).
    #[arg(
        long,
        env = "ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_PROGRESSIVE_SYNCS"
    )]
    enable_progressive_syncs: bool,
    /// Let the SCM provider and pull request generators call providers (Argo CD's flag).
    #[arg(
        long,
        env = "ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_SCM_PROVIDERS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    enable_scm_providers: bool,
    /// The API URLs SCM provider and pull request generators may name, comma-separated (empty:
    /// any); generators without a custom API URL are not restricted (Argo CD's flag).
    #[arg(
        long,
        env = "ARGOCD_APPLICATIONSET_CONTROLLER_ALLOWED_SCM_PROVIDERS",
        value_delimiter = ','
    )]
    allowed_scm_providers: Vec<String>,
    /// PEM certificates trusted for self-hosted SCM providers besides the system's.
    #[arg(long, env = "ARGOCD_APPLICATIONSET_CONTROLLER_SCM_ROOT_CA_PATH")]
    scm_root_ca_path: Option<PathBuf>,
    /// Read SCM tokens only from Secrets labelled argocd.argoproj.io/secret-type=scm-creds.
    #[arg(long, env = "ARGOCD_APPLICATIONSET_CONTROLLER_TOKENREF_STRICT_MODE")]
    token_ref_strict_mode: bool,
    /// Namespaces besides --namespace whose ApplicationSets are reconciled, comma-separated: names,
    /// globs (`team-*`) or `/regular expressions/` (Argo CD's flag). Their Applications are made
    /// in the set's namespace; projects, repositories and clusters still come from --namespace.
    #[arg(
        long,
        env = "ARGOCD_APPLICATIONSET_CONTROLLER_NAMESPACES",
        value_delimiter = ','
    )]
    applicationset_namespaces: Vec<String>,
    /// What the controller may do to generated Applications: sync (create, update, delete),
    /// create-only, create-update or create-delete. Given, it holds for every set unless
    /// --enable-policy-override (Argo CD's flag; empty: sync, sets may override).
    #[arg(
        long,
        env = "ARGOCD_APPLICATIONSET_CONTROLLER_POLICY",
        default_value = ""
    )]
    policy: String,
    /// Let a set's syncPolicy.applicationsSync override --policy (default: true when --policy is
    /// empty, false when it is given).
    #[arg(
        long,
        env = "ARGOCD_APPLICATIONSET_CONTROLLER_ENABLE_POLICY_OVERRIDE",
        num_args = 0..=1,
        default_missing_value = "true"
    )]
    enable_policy_override: Option<bool>,
    /// This replica's identity in the Lease (default: hostname and a random suffix).
    #[arg(long, env = "FERRY_LEADER_ELECT_IDENTITY")]
    leader_elect_identity: Option<String>,
}

impl Args {
    /// `--policy` as upstream reads it: empty is `sync`.
    fn policy(&self) -> anyhow::Result<ApplicationsSyncPolicy> {
        if self.policy.is_empty() {
            return Ok(ApplicationsSyncPolicy::Sync);
        }
        serde_json::from_value(serde_json::Value::String(self.policy.clone())).map_err(|_| {
            anyhow::anyhow!(
                "Policy value can be: sync, create-only, create-update, create-delete, default value: sync"
            )
        })
    }

    /// client-go's timings (15 s / 10 s / 2 s), as Argo CD's ApplicationSet controller uses.
    fn election(&self) -> Option<LeaderElection> {
        self.enable_leader_election.then(|| LeaderElection {
            namespace: self.namespace.clone(),
            lease: LEASE.to_string(),
            identity: self
                .leader_elect_identity
                .clone()
                .unwrap_or_else(ferry_leader::default_identity),
            lease_duration: Duration::from_secs(15),
            renew_deadline: Duration::from_secs(10),
            retry_period: Duration::from_secs(2),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    ferry_runtime::init_logging(false);
    // Anyone who may create a set in another namespace could aim an SCM generator's tokenRef
    // at a provider of their own and read the token (upstream's rule).
    if !args.applicationset_namespaces.is_empty()
        && args.enable_scm_providers
        && args.allowed_scm_providers.is_empty()
    {
        anyhow::bail!(
            "When enabling applicationset in any namespace using applicationset-namespaces, you must either set --enable-scm-providers=false or specify --allowed-scm-providers"
        );
    }
    let policy = args.policy()?;
    let policy_override = args
        .enable_policy_override
        .unwrap_or(args.policy.is_empty());
    let config =
        ferry_runtime::kube_config(args.kubeconfig.as_deref(), args.context.clone()).await?;
    let client = kube::Client::try_from(config.clone())?;
    let leadership = match args.election() {
        Some(election) => tokio::select! {
            acquired = election.acquire(config) => Some(std::sync::Arc::new(acquired?)),
            // A standby stops when asked instead of waiting out the pod's grace period.
            () = ferry_runtime::shutdown_signal() => return Ok(()),
        },
        None => None,
    };
    if let Some(leadership) = &leadership {
        leadership.exit_when_lost();
    }
    let cache = args
        .cache_dir
        .unwrap_or_else(|| std::env::temp_dir().join("ferry-appset"));
    let settings = ferry_appset::controller::Settings {
        namespace: args.namespace,
        git_root: cache.join("git"),
        max_repo_size: (args.max_repo_size > 0).then_some(args.max_repo_size),
        concurrency: args.concurrent_reconciliations,
        progressive_syncs: args.enable_progressive_syncs,
        applicationset_namespaces: args.applicationset_namespaces,
        policy,
        policy_override,
        scm: ferry_appset::generators::ScmSettings {
            enabled: args.enable_scm_providers,
            allowed_providers: args.allowed_scm_providers,
            root_ca_path: args.scm_root_ca_path,
            token_ref_strict_mode: args.token_ref_strict_mode,
        },
    };
    ferry_appset::controller::run(client, settings, ferry_runtime::shutdown_signal()).await?;
    if let Some(leadership) = leadership {
        leadership.release().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Args::command().debug_assert();
    }

    #[test]
    fn policy_flags_as_upstream_reads_them() {
        let args = |extra: &[&str]| {
            Args::try_parse_from(["ferry-appset-controller"].iter().chain(extra)).unwrap()
        };
        assert_eq!(args(&[]).policy().unwrap(), ApplicationsSyncPolicy::Sync);
        assert_eq!(args(&[]).enable_policy_override, None);
        let given = args(&["--policy", "create-only", "--enable-policy-override"]);
        assert_eq!(given.policy().unwrap(), ApplicationsSyncPolicy::CreateOnly);
        assert_eq!(given.enable_policy_override, Some(true));
        let err = args(&["--policy", "delete-all"]).policy().unwrap_err();
        assert!(err.to_string().starts_with("Policy value can be"), "{err}");
        let namespaces = args(&["--applicationset-namespaces", "team-*,/^ci-/"]);
        assert_eq!(namespaces.applicationset_namespaces, ["team-*", "/^ci-/"]);
    }
}
