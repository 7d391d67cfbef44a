//! `ferry repo` and `ferry repocreds`: repositories and credential templates as Argo CD stores
//! them, in `repository` and `repo-creds` Secrets of the control namespace (core mode) or
//! through a server's `/api/v1/repositories` and `/api/v1/repocreds`. Listings never show
//! passwords or keys, only whether there are credentials.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use ferry_git::Credentials;
use ferry_render::with_repo_secret;
use ferry_types::secrets::{RepoSecret, RepoSecretKind};
use kube::api::DeleteParams;
use reqwest::Method;
use serde::Serialize;
use serde_json::Value;

use crate::core::{Core, KubeArgs};
use crate::output::{ListFormat, Table, print_json, print_yaml};
use crate::rendering;
use crate::server::Mode;
use crate::server::apps::items;
use crate::server::client::{ApiClient, segment};

#[derive(clap::Args, Debug)]
pub struct RepoArgs {
    #[command(subcommand)]
    command: RepoCommand,
}

#[derive(Subcommand, Debug)]
enum RepoCommand {
    /// Add a repository (its connection is tested first for Git).
    Add(AddArgs),
    /// List repositories.
    List(ListArgs),
    /// Show a repository.
    Get(GetArgs),
    /// Remove a repository.
    Rm(RmArgs),
}

#[derive(clap::Args, Debug)]
pub struct CredsArgs {
    #[command(subcommand)]
    command: CredsCommand,
}

#[derive(Subcommand, Debug)]
enum CredsCommand {
    /// Add credentials for every repository whose URL starts with URL-PREFIX.
    Add(CredsAddArgs),
    /// List credential templates.
    List(ListArgs),
    /// Remove a credential template.
    Rm(CredsRmArgs),
}

#[derive(clap::Args, Debug)]
struct AddArgs {
    url: String,
    /// Display name (Helm repositories are referred to by it).
    #[arg(long)]
    name: Option<String>,
    /// The AppProject the repository belongs to (default: every project).
    #[arg(long)]
    project: Option<String>,
    #[command(flatten)]
    credentials: CredentialFlags,
}

#[derive(clap::Args, Debug)]
struct CredsAddArgs {
    #[arg(value_name = "URL-PREFIX")]
    url: String,
    #[command(flatten)]
    credentials: CredentialFlags,
}

#[derive(clap::Args, Debug)]
struct CredentialFlags {
    /// Repository type.
    #[arg(long = "type", value_enum, default_value_t)]
    repo_type: RepoType,
    /// Username for https.
    #[arg(long)]
    username: Option<String>,
    /// Password or access token for https.
    #[arg(long)]
    password: Option<String>,
    /// File holding the ssh private key.
    #[arg(long, value_name = "FILE")]
    ssh_private_key_path: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (https) or host key (ssh).
    #[arg(long, alias = "insecure-ignore-host-key")]
    insecure_skip_server_verification: bool,
    /// The Helm repository is an OCI registry.
    #[arg(long)]
    enable_oci: bool,
    /// Reach the OCI registry over plain HTTP (a Helm repository with --enable-oci, or --type
    /// oci).
    #[arg(long)]
    insecure_oci_force_http: bool,
    /// Replace an existing entry for the same URL even if it differs.
    #[arg(long)]
    upsert: bool,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum RepoType {
    #[default]
    Git,
    Helm,
    /// An OCI artifact of manifests (Argo CD 3.1), `oci://registry/repository`.
    Oci,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args, Debug)]
struct GetArgs {
    url: String,
    /// Output format.
    #[arg(long, short = 'o', value_enum, default_value_t)]
    output: ListFormat,
}

#[derive(clap::Args, Debug)]
struct RmArgs {
    url: String,
    /// Only the entry of this project (default: every entry for the URL).
    #[arg(long)]
    project: Option<String>,
}

#[derive(clap::Args, Debug)]
struct CredsRmArgs {
    #[arg(value_name = "URL-PREFIX")]
    url: String,
}

pub async fn run(kube: &KubeArgs, mode: Mode, args: RepoArgs) -> anyhow::Result<ExitCode> {
    if let Mode::Server(session) = mode {
        return run_server(&session.api, args).await;
    }
    let core = Core::connect(kube).await?;
    match args.command {
        RepoCommand::Add(args) => {
            let mut repo = args
                .credentials
                .to_secret(RepoSecretKind::Repository, &args.url)?;
            repo.name = args.name.unwrap_or_default();
            repo.project = args.project.unwrap_or_default();
            if repo.repo_type == "git" {
                test_connection(&core, &repo).await?;
            }
            add(&core, repo, args.credentials.upsert).await
        }
        RepoCommand::List(args) => list(&core, RepoSecretKind::Repository, args.output).await,
        RepoCommand::Get(args) => {
            let views: Vec<RepoView> = core
                .repositories()
                .await?
                .iter()
                .filter(|(_, r)| r.kind == RepoSecretKind::Repository && r.url == args.url)
                .map(|(_, r)| RepoView::from(r))
                .collect();
            if views.is_empty() {
                bail!(
                    "repository {} not found in namespace {}",
                    args.url,
                    core.namespace
                );
            }
            print_views(RepoSecretKind::Repository, &views, args.output)
        }
        RepoCommand::Rm(args) => {
            remove(
                &core,
                RepoSecretKind::Repository,
                &args.url,
                args.project.as_deref(),
            )
            .await
        }
    }
}

pub async fn run_creds(kube: &KubeArgs, mode: Mode, args: CredsArgs) -> anyhow::Result<ExitCode> {
    if let Mode::Server(session) = mode {
        return run_creds_server(&session.api, args).await;
    }
    let core = Core::connect(kube).await?;
    match args.command {
        CredsCommand::Add(args) => {
            let creds = args
                .credentials
                .to_secret(RepoSecretKind::RepoCreds, &args.url)?;
            add(&core, creds, args.credentials.upsert).await
        }
        CredsCommand::List(args) => list(&core, RepoSecretKind::RepoCreds, args.output).await,
        CredsCommand::Rm(args) => remove(&core, RepoSecretKind::RepoCreds, &args.url, None).await,
    }
}

async fn run_server(api: &ApiClient, args: RepoArgs) -> anyhow::Result<ExitCode> {
    let kind = RepoSecretKind::Repository;
    match args.command {
        RepoCommand::Add(args) => {
            let mut repo = args.credentials.to_secret(kind, &args.url)?;
            repo.name = args.name.unwrap_or_default();
            repo.project = args.project.unwrap_or_default();
            let upsert = [("upsert", args.credentials.upsert.to_string())];
            api.call::<Value>(
                Method::POST,
                "/api/v1/repositories",
                &upsert,
                Some(&repo.to_api()),
            )
            .await
            .with_context(|| format!("adding repository {}", repo.url))?;
            println!("repository '{}' added", repo.url);
        }
        RepoCommand::List(args) => {
            let list = api.get("/api/v1/repositories", &[]).await?;
            let views: Vec<RepoView> = items::<Value>(list)?.iter().map(view_of).collect();
            print_views(kind, &views, args.output)?;
        }
        RepoCommand::Get(args) => {
            let path = format!("/api/v1/repositories/{}", segment(&args.url));
            let repo: Value = api.get(&path, &[]).await?;
            print_views(kind, &[view_of(&repo)], args.output)?;
        }
        RepoCommand::Rm(args) => {
            let path = format!("/api/v1/repositories/{}", segment(&args.url));
            let project = [("appProject", args.project.unwrap_or_default())];
            api.call::<Value>(Method::DELETE, &path, &project, None::<&Value>)
                .await
                .with_context(|| format!("removing repository {}", args.url))?;
            println!("repository '{}' removed", args.url);
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn run_creds_server(api: &ApiClient, args: CredsArgs) -> anyhow::Result<ExitCode> {
    let kind = RepoSecretKind::RepoCreds;
    match args.command {
        CredsCommand::Add(args) => {
            let creds = args.credentials.to_secret(kind, &args.url)?;
            let upsert = [("upsert", args.credentials.upsert.to_string())];
            api.call::<Value>(
                Method::POST,
                "/api/v1/repocreds",
                &upsert,
                Some(&creds.to_api()),
            )
            .await
            .with_context(|| format!("adding repository credentials {}", creds.url))?;
            println!("repository credentials '{}' added", creds.url);
        }
        CredsCommand::List(args) => {
            let list = api.get("/api/v1/repocreds", &[]).await?;
            let views: Vec<RepoView> = items::<Value>(list)?.iter().map(view_of).collect();
            print_views(kind, &views, args.output)?;
        }
        CredsCommand::Rm(args) => {
            let path = format!("/api/v1/repocreds/{}", segment(&args.url));
            api.call::<Value>(Method::DELETE, &path, &[], None::<&Value>)
                .await
                .with_context(|| format!("removing repository credentials {}", args.url))?;
            println!("repository credentials '{}' removed", args.url);
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// A repository or credential template as a server lists it (secrets already left out there).
fn view_of(item: &Value) -> RepoView {
    let text = |key: &str| item[key].as_str().unwrap_or_default().to_string();
    let flag = |key: &str| item[key].as_bool().unwrap_or(false);
    RepoView {
        repo: [text("repo"), text("url")].concat(),
        name: text("name"),
        repo_type: text("type"),
        project: text("project"),
        insecure: flag("insecure"),
        enable_oci: flag("enableOCI"),
        has_credentials: !text("username").is_empty() || flag("inheritedCreds"),
    }
}

impl CredentialFlags {
    fn to_secret(&self, kind: RepoSecretKind, url: &str) -> anyhow::Result<RepoSecret> {
        let ssh_private_key = match &self.ssh_private_key_path {
            Some(path) => Some(
                std::fs::read_to_string(path)
                    .with_context(|| format!("reading ssh private key {}", path.display()))?,
            ),
            None => None,
        };
        if self.insecure_oci_force_http && !self.enable_oci && self.repo_type != RepoType::Oci {
            anyhow::bail!(
                "--insecure-oci-force-http is for OCI registries: add --enable-oci or --type oci"
            );
        }
        let mut repo = RepoSecret {
            repo_type: match self.repo_type {
                RepoType::Git => "git",
                RepoType::Helm => "helm",
                RepoType::Oci => "oci",
            }
            .to_string(),
            username: self.username.clone().filter(|u| !u.is_empty()),
            password: self.password.clone().filter(|p| !p.is_empty()),
            ssh_private_key,
            insecure: self.insecure_skip_server_verification,
            enable_oci: self.enable_oci,
            ..RepoSecret::new(kind, url)
        };
        repo.set_insecure_oci_force_http(self.insecure_oci_force_http);
        Ok(repo)
    }
}

/// Lists the repository's refs with the new credentials, as Argo CD does before saving them.
async fn test_connection(core: &Core, repo: &RepoSecret) -> anyhow::Result<()> {
    let credentials = core
        .with_trusted_hosts(with_repo_secret(Credentials::new(), repo))
        .await?;
    rendering::repo_cache(credentials)
        .for_project(&repo.project)
        .ls_remote(&repo.url)
        .await
        .with_context(|| format!("cannot connect to repository {}", repo.url))?;
    Ok(())
}

fn noun(kind: RepoSecretKind) -> &'static str {
    match kind {
        RepoSecretKind::Repository => "repository",
        RepoSecretKind::RepoCreds => "repository credentials",
    }
}

async fn add(core: &Core, repo: RepoSecret, upsert: bool) -> anyhow::Result<ExitCode> {
    core.prepare().await?;
    let noun = noun(repo.kind);
    let existing = core
        .repositories()
        .await?
        .into_iter()
        .find(|(_, r)| r.same_entry(&repo));
    let secret = repo.to_secret(&core.namespace);
    let what = format!("{noun} '{}'", repo.url);
    core.save_secret(secret, existing, &repo, upsert, &what)
        .await?;
    Ok(ExitCode::SUCCESS)
}

/// A repository as listings show it: no secret values.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RepoView {
    repo: String,
    name: String,
    #[serde(rename = "type")]
    repo_type: String,
    project: String,
    insecure: bool,
    enable_oci: bool,
    has_credentials: bool,
}

impl From<&RepoSecret> for RepoView {
    fn from(repo: &RepoSecret) -> Self {
        Self {
            repo: repo.url.clone(),
            name: repo.name.clone(),
            repo_type: repo.repo_type.clone(),
            project: repo.project.clone(),
            insecure: repo.insecure,
            enable_oci: repo.enable_oci,
            has_credentials: repo.has_credentials(),
        }
    }
}

async fn list(core: &Core, kind: RepoSecretKind, output: ListFormat) -> anyhow::Result<ExitCode> {
    let mut views: Vec<RepoView> = core
        .repositories()
        .await?
        .iter()
        .filter(|(_, r)| r.kind == kind)
        .map(|(_, r)| RepoView::from(r))
        .collect();
    views.sort_by(|a, b| (&a.repo, &a.project).cmp(&(&b.repo, &b.project)));
    print_views(kind, &views, output)?;
    Ok(ExitCode::SUCCESS)
}

fn print_views(
    kind: RepoSecretKind,
    views: &[RepoView],
    output: ListFormat,
) -> anyhow::Result<ExitCode> {
    match output {
        ListFormat::Json => print_json(&views)?,
        ListFormat::Yaml => print_yaml(&views)?,
        ListFormat::Name => {
            for view in views {
                println!("{}", view.repo);
            }
        }
        ListFormat::Wide => print!("{}", repo_table(kind, views).render()),
    }
    Ok(ExitCode::SUCCESS)
}

fn repo_table(kind: RepoSecretKind, views: &[RepoView]) -> Table {
    let mut table = match kind {
        RepoSecretKind::Repository => Table::new(&[
            "TYPE", "NAME", "REPO", "INSECURE", "OCI", "CREDS", "PROJECT",
        ]),
        RepoSecretKind::RepoCreds => Table::new(&["URL PATTERN", "TYPE", "OCI", "CREDS"]),
    };
    for view in views {
        table.row(match kind {
            RepoSecretKind::Repository => vec![
                view.repo_type.clone(),
                view.name.clone(),
                view.repo.clone(),
                view.insecure.to_string(),
                view.enable_oci.to_string(),
                view.has_credentials.to_string(),
                view.project.clone(),
            ],
            RepoSecretKind::RepoCreds => vec![
                view.repo.clone(),
                view.repo_type.clone(),
                view.enable_oci.to_string(),
                view.has_credentials.to_string(),
            ],
        });
    }
    table
}

async fn remove(
    core: &Core,
    kind: RepoSecretKind,
    url: &str,
    project: Option<&str>,
) -> anyhow::Result<ExitCode> {
    let noun = noun(kind);
    let matching: Vec<String> = core
        .repositories()
        .await?
        .into_iter()
        .filter(|(_, r)| r.kind == kind && r.url == url)
        .filter(|(_, r)| project.is_none_or(|p| r.project == p))
        .map(|(name, _)| name)
        .collect();
    if matching.is_empty() {
        bail!("{noun} {url} not found in namespace {}", core.namespace);
    }
    for name in matching {
        core.secrets()
            .delete(&name, &DeleteParams::default())
            .await
            .with_context(|| format!("deleting Secret {name} of {noun} {url}"))?;
    }
    println!("{noun} '{url}' removed");
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_show_whether_there_are_credentials_never_which() {
        let repo = RepoSecret {
            username: Some("alice".into()),
            password: Some("hunter2".into()),
            ..RepoSecret::new(RepoSecretKind::Repository, "https://git.example.com/a.git")
        };
        let view = RepoView::from(&repo);
        let json = serde_json::to_string(&view).unwrap();
        assert!(
            !json.contains("hunter2") && !json.contains("alice"),
            "{json}"
        );
        let table = repo_table(RepoSecretKind::Repository, &[view]).render();
        assert_eq!(
            table,
            "TYPE  NAME  REPO                           INSECURE  OCI    CREDS  PROJECT\n\
             git         https://git.example.com/a.git  false     false  true\n"
        );
    }

    #[derive(clap::Parser)]
    struct Add {
        #[command(flatten)]
        args: AddArgs,
    }

    fn add(args: &[&str]) -> Result<RepoSecret, String> {
        use clap::Parser;
        let parsed = Add::try_parse_from([&["add"], args].concat()).map_err(|e| e.to_string())?;
        parsed
            .args
            .credentials
            .to_secret(RepoSecretKind::Repository, &parsed.args.url)
            .map_err(|e| e.to_string())
    }

    /// As argocd's `--insecure-oci-force-http`: `insecureOCIForceHttp: "true"` in the Secret and
    /// in the API's JSON, for OCI repositories only.
    #[test]
    fn insecure_oci_force_http_is_stored_as_argo_cd_stores_it() {
        let flags = ["reg.local/charts", "--type", "helm", "--enable-oci"];
        let repo = add(&[&flags[..], &["--insecure-oci-force-http"]].concat()).unwrap();
        assert!(repo.insecure_oci_force_http());
        let data = repo.to_secret("argocd").data.unwrap();
        assert_eq!(data["insecureOCIForceHttp"].0, b"true");
        assert_eq!(repo.to_api()["insecureOCIForceHttp"], true);

        let repo = add(&flags).unwrap();
        assert!(!repo.insecure_oci_force_http());
        assert!(
            !repo
                .to_secret("argocd")
                .data
                .unwrap()
                .contains_key("insecureOCIForceHttp")
        );

        let err = add(&["reg.local/charts", "--insecure-oci-force-http"]).unwrap_err();
        assert!(err.contains("--enable-oci"), "{err}");

        // An artifact of manifests (Argo CD 3.1's `--type oci`).
        let oci = ["oci://reg.local/manifests/web", "--type", "oci"];
        let repo = add(&[&oci[..], &["--insecure-oci-force-http"]].concat()).unwrap();
        assert_eq!(repo.repo_type, "oci");
        assert!(repo.insecure_oci_force_http());
    }
}
