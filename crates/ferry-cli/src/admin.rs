//! `ferry admin`: tools for the operator. `rbac can` answers whether the RBAC policy lets a
//! subject do something, as `argocd admin settings rbac can` does: from a policy file, or from
//! the cluster's `argocd-rbac-cm` and AppProject roles. `resource-overrides` lists and runs
//! resource actions on an object file ([`resource_overrides`]).

mod resource_overrides;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use ferry_auth::rbac::{
    CONFIG_MAP_NAME, MATCH_MODE_KEY, POLICY_CSV_KEY, POLICY_DEFAULT_KEY, Policy, Subject, resources,
};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;
use kube::api::ListParams;

use crate::core::{Core, KubeArgs};

/// `rbac can`'s exit code for errors, told apart from "No" (1).
const EXIT_ERROR: u8 = 2;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// RBAC policy tools.
    Rbac(RbacArgs),
    /// Resource actions (argocd-cm's and the built-in ones) on an object file.
    ResourceOverrides(resource_overrides::Args),
}

#[derive(clap::Args, Debug)]
struct RbacArgs {
    #[command(subcommand)]
    command: RbacCommand,
}

#[derive(Subcommand, Debug)]
enum RbacCommand {
    /// Check whether a subject may do an action: prints Yes (exit 0) or No (exit 1); errors
    /// exit 2.
    Can(CanArgs),
}

#[derive(clap::Args, Debug)]
struct CanArgs {
    /// Who asks: a user, a group, a role (`role:readonly`) or a project role
    /// (`proj:<project>:<role>`).
    subject: String,
    /// get, create, update, delete, sync, override, action/<group>/<kind>/<action>, invoke...
    action: String,
    /// applications, applicationsets, clusters, repositories, projects, accounts, certificates,
    /// gpgkeys, logs, exec, extensions (or argocd's short names: app, repo, proj...).
    resource: String,
    /// `<project>/<app>` (or `<project>/<namespace>/<app>`) for project-scoped resources, else
    /// the object's name.
    object: String,
    /// A policy CSV, or an argocd-rbac-cm ConfigMap manifest, to check instead of the cluster's
    /// ConfigMap and AppProjects.
    #[arg(long, value_name = "FILE")]
    policy_file: Option<PathBuf>,
    /// The role every subject has [default: the ConfigMap's policy.default].
    #[arg(long, value_name = "ROLE")]
    default_role: Option<String>,
    /// How policy patterns match [default: the ConfigMap's policy.matchMode, else glob].
    #[arg(long, value_enum)]
    match_mode: Option<MatchMode>,
    /// The subject's groups, comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "GROUPS")]
    groups: Vec<String>,
    /// Also print the rule that decided, on stderr.
    #[arg(long, short = 'v')]
    verbose: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum MatchMode {
    Glob,
    Regex,
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    let args = match args.command {
        Command::Rbac(RbacArgs {
            command: RbacCommand::Can(args),
        }) => args,
        Command::ResourceOverrides(args) => return resource_overrides::run(kube, args).await,
    };
    Ok(match can(kube, args).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    })
}

async fn can(kube: &KubeArgs, args: CanArgs) -> anyhow::Result<ExitCode> {
    let resource = resource_name(&args.resource)?;
    let policy = match &args.policy_file {
        Some(path) => policy(file_settings(path)?, &args)
            .with_context(|| format!("policy file {}", path.display()))?,
        None => cluster_policy(kube, &args).await?,
    };
    for rejected in policy.rejected_project_policies() {
        eprintln!("warning: {rejected}");
    }
    let groups = args
        .groups
        .iter()
        .map(|group| group.trim())
        .filter(|group| !group.is_empty());
    let subject = Subject::new(&args.subject).with_groups(groups);
    let decision = policy.enforce(&subject, resource, &args.action, &args.object);
    println!("{}", if decision.is_allowed() { "Yes" } else { "No" });
    if args.verbose {
        eprintln!("{decision}");
    }
    Ok(if decision.is_allowed() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The canonical name of a resource, also accepting the short names argocd accepts.
fn resource_name(name: &str) -> anyhow::Result<&'static str> {
    let canonical = match name {
        "app" | "apps" | "application" => resources::APPLICATIONS,
        "appset" | "appsets" | "applicationset" => resources::APPLICATIONSETS,
        "cluster" => resources::CLUSTERS,
        "repo" | "repos" | "repository" => resources::REPOSITORIES,
        "proj" | "projs" | "project" => resources::PROJECTS,
        "account" => resources::ACCOUNTS,
        "cert" | "certs" | "certificate" => resources::CERTIFICATES,
        "gpgkey" | "key" => resources::GPGKEYS,
        "log" => resources::LOGS,
        "extension" => resources::EXTENSIONS,
        other => match resources::RESOURCES.iter().find(|known| **known == other) {
            Some(known) => known,
            None => bail!(
                "unknown resource {other:?}: use one of {}",
                resources::RESOURCES.join(", ")
            ),
        },
    };
    Ok(canonical)
}

/// The settings a policy file holds: an argocd-rbac-cm manifest's data, or a bare policy CSV.
fn file_settings(path: &Path) -> anyhow::Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading policy file {}", path.display()))?;
    let manifest = serde_yaml::from_str::<serde_yaml::Value>(&text)
        .ok()
        .filter(|value| value.get("kind").and_then(|kind| kind.as_str()) == Some("ConfigMap"));
    match manifest {
        Some(manifest) => {
            let config_map: ConfigMap = serde_yaml::from_value(manifest)
                .with_context(|| format!("{}: not a valid ConfigMap", path.display()))?;
            Ok(config_map.data.unwrap_or_default())
        }
        None => Ok(BTreeMap::from([(POLICY_CSV_KEY.to_string(), text)])),
    }
}

/// The policy of these settings, with the command line's overrides.
fn policy(mut settings: BTreeMap<String, String>, args: &CanArgs) -> anyhow::Result<Policy> {
    if let Some(role) = &args.default_role {
        settings.insert(POLICY_DEFAULT_KEY.to_string(), role.clone());
    }
    if let Some(mode) = args.match_mode {
        let mode = match mode {
            MatchMode::Glob => "glob",
            MatchMode::Regex => "regex",
        };
        settings.insert(MATCH_MODE_KEY.to_string(), mode.to_string());
    }
    Ok(Policy::from_config_map_data(&settings)?)
}

/// The control namespace's policy: argocd-rbac-cm (only the built-in policy when it is missing)
/// and the AppProjects' roles.
async fn cluster_policy(kube: &KubeArgs, args: &CanArgs) -> anyhow::Result<Policy> {
    let core = Core::connect(kube).await?;
    let config_maps: Api<ConfigMap> = Api::namespaced(core.client.clone(), &core.namespace);
    let where_ = format!("ConfigMap {}/{CONFIG_MAP_NAME}", core.namespace);
    let settings = match config_maps
        .get_opt(CONFIG_MAP_NAME)
        .await
        .with_context(|| format!("reading {where_}"))?
    {
        Some(config_map) => config_map.data.unwrap_or_default(),
        None => {
            eprintln!("warning: {where_} not found: only the built-in policy applies");
            BTreeMap::new()
        }
    };
    let policy = policy(settings, args).with_context(|| where_.clone())?;
    let projects = match core.projects().list(&ListParams::default()).await {
        Ok(list) => list.items,
        // Without the AppProject CRD there are no project roles.
        Err(kube::Error::Api(status)) if status.is_not_found() => Vec::new(),
        Err(err) => {
            return Err(err).with_context(|| format!("listing AppProjects in {}", core.namespace));
        }
    };
    Ok(policy.with_projects(&projects))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        args: CanArgs,
    }

    fn can_args(extra: &[&str]) -> CanArgs {
        let base = ["can", "alice", "sync", "applications", "team-a/web"];
        Cli::try_parse_from(base.iter().chain(extra)).unwrap().args
    }

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn resources_accept_argocd_short_names() {
        assert_eq!(resource_name("app").unwrap(), "applications");
        assert_eq!(resource_name("applications").unwrap(), "applications");
        assert_eq!(resource_name("proj").unwrap(), "projects");
        assert_eq!(resource_name("repo").unwrap(), "repositories");
        assert_eq!(resource_name("key").unwrap(), "gpgkeys");
        assert_eq!(
            resource_name("write-repositories").unwrap(),
            "write-repositories"
        );
        let err = resource_name("apps/v1").unwrap_err().to_string();
        assert!(
            err.starts_with("unknown resource \"apps/v1\": use one of applications, "),
            "{err}"
        );
    }

    #[test]
    fn policy_files_are_csv_or_config_maps() {
        let dir = tempfile::tempdir().unwrap();
        let csv =
            "# team policy\np, role:dev, applications, sync, team-a/*, allow\ng, alice, role:dev\n";
        let settings = file_settings(&write(&dir, "policy.csv", csv)).unwrap();
        assert_eq!(
            settings,
            BTreeMap::from([("policy.csv".to_string(), csv.to_string())])
        );

        let manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: argocd-rbac-cm}\n\
                        data:\n  policy.default: role:readonly\n  policy.team.csv: |\n    g, alice, role:admin\n";
        let settings = file_settings(&write(&dir, "cm.yaml", manifest)).unwrap();
        assert_eq!(
            settings,
            BTreeMap::from([
                ("policy.default".to_string(), "role:readonly".to_string()),
                (
                    "policy.team.csv".to_string(),
                    "g, alice, role:admin\n".to_string()
                ),
            ])
        );
        let err = file_settings(&dir.path().join("missing.csv")).unwrap_err();
        assert!(
            format!("{err:#}").starts_with("reading policy file "),
            "{err:#}"
        );
    }

    #[test]
    fn flags_override_the_file_settings() {
        let settings = BTreeMap::from([
            ("policy.default".to_string(), "role:admin".to_string()),
            (
                "policy.csv".to_string(),
                "p, alice, applications, sync, ^team-a/.*$, allow".to_string(),
            ),
        ]);
        let policy = policy(settings.clone(), &can_args(&[])).unwrap();
        assert_eq!(policy.default_role(), Some("role:admin"));
        let policy = policy_with(
            &settings,
            &["--default-role", "role:readonly", "--match-mode", "regex"],
        );
        assert_eq!(policy.default_role(), Some("role:readonly"));
        assert!(
            policy
                .enforce(&Subject::new("alice"), "applications", "sync", "team-a/web")
                .is_allowed()
        );
    }

    fn policy_with(settings: &BTreeMap<String, String>, flags: &[&str]) -> Policy {
        policy(settings.clone(), &can_args(flags)).unwrap()
    }
}
