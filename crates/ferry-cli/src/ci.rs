//! `ferry ci set-image`: the CI bump step. Sets an image's tag or digest where a config
//! repository keeps it — a kustomization (as `kustomize edit set image`), a Helm values file at
//! a YAML path (as `yq`), plain manifests, an `.argocd-source-<app>.yaml` — optionally bumping
//! its semver, in a checkout (optionally committed) or in a remote repository's branch
//! (committed and pushed with retries). The edits are `ferry_image`'s (comments and formatting
//! kept), the commit and push `ferry_git::push`'s.

use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use ferry_git::push::{
    Author, PushError, PushOutcome, PushRequest, commit_and_push_with, commit_paths,
};
use ferry_git::{Credentials, RepoCredential};
use ferry_image::argocd_source::{self, HelmParameter};
use ferry_image::bump::{Level, bump};
use ferry_image::kustomization::{self, KustomizeImage};
use ferry_image::{Change, Edited, FileError, ImageRef, edit_file, helm_values, manifest};

/// Exit status when nothing needed to change (0: something changed, 1: an error).
const NOTHING_TO_CHANGE: u8 = 2;

const EXIT_CODES: &str = "\
Exit status:
  0  the image was changed (and committed / pushed when asked)
  2  nothing to change: every target already had that image
  1  error (bad arguments, a file that is missing or not as expected, Git failures); the
     message names the file or repository and the cause, and nothing was committed or pushed";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: CiCommand,
}

#[derive(Subcommand, Debug)]
enum CiCommand {
    /// Set an image's tag or digest in a config repository (kustomization, Helm values,
    /// manifests, .argocd-source file), then optionally commit and push.
    #[command(after_help = EXIT_CODES)]
    SetImage(Box<SetImageArgs>),
}

#[derive(clap::Args, Debug)]
struct SetImageArgs {
    /// The image, in `kustomize edit set image`'s form: `NAME:TAG`, `NAME@DIGEST`,
    /// `NAME=NEWNAME[:TAG][@DIGEST]`; with --bump only `NAME` or `NAME=NEWNAME`.
    #[arg(long, value_name = "IMAGE")]
    image: String,
    /// Bump the semver of the image's current tag (read from the first target that has one)
    /// instead of giving a tag. A leading `v` is kept.
    #[arg(long, value_enum)]
    bump: Option<BumpLevel>,

    /// A kustomization (its directory or file): set its `images:` entry. Repeatable.
    #[arg(long, value_name = "DIR|FILE")]
    kustomization: Vec<PathBuf>,
    /// A Helm values file: set the tag (the digest when only a digest is given) at --path.
    /// Repeatable.
    #[arg(long, value_name = "FILE")]
    values: Vec<PathBuf>,
    /// Dotted YAML path of the tag in --values files (and the Helm parameter of
    /// --argocd-source-helm); missing keys are created.
    #[arg(long, value_name = "PATH", default_value = "image.tag")]
    path: String,
    /// Dotted YAML path where --values files (and --argocd-source-helm) keep the image name,
    /// set when IMAGE gives a new name.
    #[arg(long, value_name = "PATH")]
    name_path: Option<String>,
    /// A manifest file (one or more YAML documents): set the image of every container and init
    /// container running it. Repeatable.
    #[arg(long, value_name = "FILE")]
    manifest: Vec<PathBuf>,
    /// An .argocd-source-<app>.yaml file (made when missing): set its `kustomize.images` entry,
    /// or with --argocd-source-helm its `helm.parameters`. Repeatable.
    #[arg(long, value_name = "FILE")]
    argocd_source: Vec<PathBuf>,
    /// Write --argocd-source files' Helm parameters (--path, --name-path) instead of Kustomize
    /// images.
    #[arg(long, requires = "argocd_source")]
    argocd_source_helm: bool,

    /// The checkout the target paths are relative to (without --repo).
    #[arg(long, value_name = "DIR", default_value = ".")]
    dir: PathBuf,
    /// Commit the changed files in the checkout (without --repo).
    #[arg(long, conflicts_with = "repo")]
    commit: bool,
    /// A remote config repository: its branch is cloned, edited, committed and pushed (with
    /// --push); target paths are relative to its root.
    #[arg(long, value_name = "URL")]
    repo: Option<String>,
    /// The branch of --repo to edit.
    #[arg(long, value_name = "BRANCH", default_value = "main", requires = "repo")]
    branch: String,
    /// Push to this branch instead (made from --branch when missing; built on when present).
    #[arg(long, value_name = "BRANCH", requires = "repo")]
    target_branch: Option<String>,
    /// Push the commit to --repo. A push rejected because the branch moved meanwhile fetches
    /// it and applies the change again on its new head (--max-attempts in all).
    #[arg(long, requires = "repo")]
    push: bool,
    #[arg(long, value_name = "N", default_value_t = 5)]
    max_attempts: u32,
    /// Commit message (`{image}` is replaced by the image set); default: `Set image {image}`.
    #[arg(long)]
    message: Option<String>,
    /// Commit author, `Name <email>`.
    #[arg(
        long,
        env = "FERRY_GIT_AUTHOR",
        default_value = "ferry <ferry@localhost>"
    )]
    author: String,
    /// Show what would change; write, commit and push nothing.
    #[arg(long)]
    dry_run: bool,

    /// Username for an https --repo.
    #[arg(long, env = "FERRY_GIT_USERNAME")]
    username: Option<String>,
    /// Password or token for an https --repo (prefer the environment variable: arguments show
    /// in process lists).
    #[arg(long, env = "FERRY_GIT_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// ssh private key for an ssh --repo.
    #[arg(long, env = "FERRY_GIT_SSH_PRIVATE_KEY_PATH", value_name = "FILE")]
    ssh_private_key_path: Option<PathBuf>,
    /// known_hosts for an ssh --repo (default: ~/.ssh/known_hosts).
    #[arg(long, env = "FERRY_GIT_KNOWN_HOSTS", value_name = "FILE")]
    known_hosts: Option<PathBuf>,
    /// Do not verify the server's TLS certificate (https) or host key (ssh).
    #[arg(long)]
    insecure_skip_server_verification: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum BumpLevel {
    Patch,
    Minor,
    Major,
}

impl From<BumpLevel> for Level {
    fn from(level: BumpLevel) -> Self {
        match level {
            BumpLevel::Patch => Level::Patch,
            BumpLevel::Minor => Level::Minor,
            BumpLevel::Major => Level::Major,
        }
    }
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        CiCommand::SetImage(args) => set_image(*args).await,
    }
}

/// One changed value of one file.
struct FileChange {
    file: PathBuf,
    change: Change,
}

/// What the edit of a tree did: the image finally set and each change.
struct Applied {
    image: KustomizeImage,
    changes: Vec<FileChange>,
}

impl Applied {
    fn files(&self) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self.changes.iter().map(|c| c.file.clone()).collect();
        files.dedup();
        files
    }
}

async fn set_image(args: SetImageArgs) -> anyhow::Result<ExitCode> {
    if args.kustomization.is_empty()
        && args.values.is_empty()
        && args.manifest.is_empty()
        && args.argocd_source.is_empty()
    {
        bail!("nothing to edit: give --kustomization, --values, --manifest or --argocd-source");
    }
    let targets = Targets::new(&args)?;
    let author = parse_author(&args.author)?;
    match args.repo.clone() {
        None => {
            let applied = targets.apply(&args.dir, args.dry_run)?;
            print_changes(&applied);
            if applied.changes.is_empty() {
                return Ok(nothing_to_change(&applied));
            }
            if args.commit && !args.dry_run {
                let message = message(&args, &applied.image);
                match commit_paths(&args.dir, &applied.files(), &message, &author)? {
                    Some(commit) => println!("committed {commit}"),
                    None => println!("the checkout already had these files committed"),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Some(url) => {
            if !args.push && !args.dry_run {
                bail!("--repo needs --push (or --dry-run): a commit that is not pushed is lost");
            }
            let credentials = credentials(&args, &url)?;
            // A token in the URL (`https://user:token@host/...`) is never printed.
            let shown = ferry_git::repo_url::scrub(&url);
            let request = PushRequest {
                target_branch: args.target_branch.clone(),
                max_attempts: args.max_attempts,
                dry_run: args.dry_run,
                ..PushRequest::new(&url, &args.branch, "", author)
            };
            // libgit2 blocks; the edit may run again on a newer head (a bump then bumps anew).
            let (outcome, applied) = tokio::task::block_in_place(|| {
                commit_and_push_with(
                    &credentials,
                    &request,
                    |root| targets.apply(root, false),
                    |applied| message(&args, &applied.image),
                )
            })
            .map_err(|e| match e {
                PushError::Git(e) => anyhow::Error::new(e),
                PushError::Edit(e) => e,
            })?;
            print_changes(&applied);
            match outcome {
                PushOutcome::Unchanged { .. } => Ok(nothing_to_change(&applied)),
                PushOutcome::WouldPush { head, .. } => {
                    let branch = request.target_branch.as_deref().unwrap_or(&args.branch);
                    println!("dry run: would commit on {head} and push to {branch} of {shown}");
                    Ok(ExitCode::SUCCESS)
                }
                PushOutcome::Pushed {
                    commit,
                    branch,
                    attempts,
                    ..
                } => {
                    let retried = if attempts > 1 {
                        format!(" (attempt {attempts}: the branch had moved)")
                    } else {
                        String::new()
                    };
                    println!("pushed {commit} to {branch} of {shown}{retried}");
                    Ok(ExitCode::SUCCESS)
                }
            }
        }
    }
}

fn nothing_to_change(applied: &Applied) -> ExitCode {
    println!(
        "nothing to change: {} is set already",
        applied.image.to_argocd_string()
    );
    ExitCode::from(NOTHING_TO_CHANGE)
}

fn print_changes(applied: &Applied) {
    for FileChange { file, change } in &applied.changes {
        println!("{}: {change}", file.display());
    }
}

fn message(args: &SetImageArgs, image: &KustomizeImage) -> String {
    let template = args.message.as_deref().unwrap_or("Set image {image}");
    template.replace("{image}", &image.to_argocd_string())
}

/// `Name <email>`.
fn parse_author(text: &str) -> anyhow::Result<Author> {
    let parsed = text
        .trim()
        .strip_suffix('>')
        .and_then(|rest| rest.split_once('<'));
    match parsed {
        Some((name, email)) if !name.trim().is_empty() && email.contains('@') => Ok(Author {
            name: name.trim().to_owned(),
            email: email.trim().to_owned(),
        }),
        _ => bail!("--author {text:?}: expected `Name <email>`"),
    }
}

fn credentials(args: &SetImageArgs, url: &str) -> anyhow::Result<Credentials> {
    let ssh_private_key = match &args.ssh_private_key_path {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading ssh private key {}", path.display()))?,
        ),
        None => None,
    };
    let credential = RepoCredential {
        username: args.username.clone().filter(|u| !u.is_empty()),
        password: args.password.clone().filter(|p| !p.is_empty()),
        ssh_private_key,
        insecure: args.insecure_skip_server_verification,
        ..RepoCredential::default()
    };
    let credentials = Credentials::new().with_repo(url, credential);
    let known_hosts = match &args.known_hosts {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .with_context(|| format!("reading known_hosts {}", path.display()))?,
        ),
        None => std::env::var_os("HOME")
            .map(|home| Path::new(&home).join(".ssh/known_hosts"))
            .and_then(|path| std::fs::read_to_string(path).ok()),
    };
    Ok(match known_hosts {
        Some(known_hosts) => credentials
            .with_known_hosts(&known_hosts)
            .context("reading known_hosts")?,
        None => credentials,
    })
}

/// The image argument and the files to edit, checked before anything is read.
struct Targets {
    /// With --bump: the name (and new name); the tag comes from the files.
    image: KustomizeImage,
    bump: Option<Level>,
    kustomizations: Vec<PathBuf>,
    values: Vec<PathBuf>,
    manifests: Vec<PathBuf>,
    argocd_sources: Vec<PathBuf>,
    path: String,
    name_path: Option<String>,
    argocd_source_helm: bool,
}

impl Targets {
    fn new(args: &SetImageArgs) -> anyhow::Result<Self> {
        let image = match args.bump {
            None => KustomizeImage::parse_arg(&args.image)?,
            Some(_) => {
                let (name, new_name) = match args.image.split_once('=') {
                    Some((name, new_name)) => (name, Some(new_name)),
                    None => (args.image.as_str(), None),
                };
                for part in std::iter::once(name).chain(new_name) {
                    let parsed = ImageRef::parse(part)?;
                    if parsed.tag().is_some() || parsed.digest().is_some() {
                        bail!("--image {:?}: with --bump give the name only", args.image);
                    }
                }
                KustomizeImage {
                    name: name.to_owned(),
                    new_name: new_name.map(str::to_owned),
                    ..KustomizeImage::default()
                }
            }
        };
        let confined = |paths: &[PathBuf]| -> anyhow::Result<Vec<PathBuf>> {
            paths.iter().map(|p| confine(p)).collect()
        };
        Ok(Targets {
            image,
            bump: args.bump.map(Level::from),
            kustomizations: confined(&args.kustomization)?,
            values: confined(&args.values)?,
            manifests: confined(&args.manifest)?,
            argocd_sources: confined(&args.argocd_source)?,
            path: args.path.clone(),
            name_path: args.name_path.clone(),
            argocd_source_helm: args.argocd_source_helm,
        })
    }

    /// Edit the targets under `root` (writing them unless `dry_run`).
    fn apply(&self, root: &Path, dry_run: bool) -> anyhow::Result<Applied> {
        let kustomizations = self
            .kustomizations
            .iter()
            .map(|p| kustomization_file(root, p))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let image = match self.bump {
            None => self.image.clone(),
            Some(level) => {
                let current = self.current_tag(root, &kustomizations)?;
                let file = current.file.display().to_string();
                let tag = bump(&current.tag, level).context(file)?;
                // A bump changes the tag only: a kustomization's newName stays.
                KustomizeImage {
                    new_tag: Some(tag),
                    new_name: self.image.new_name.clone().or(current.new_name),
                    ..self.image.clone()
                }
            }
        };
        let mut changes = Vec::new();
        let mut run = |file: &Path, create: bool, edit: &dyn Fn(&str) -> EditResult| {
            let edited = edit_at(root, file, create, dry_run, edit)?;
            changes.extend(edited.changes.into_iter().map(|change| FileChange {
                file: file.to_owned(),
                change,
            }));
            anyhow::Ok(())
        };
        for file in &kustomizations {
            run(file, false, &|text| kustomization::set_image(text, &image))?;
        }
        let value = image.new_tag.as_deref().or(image.digest.as_deref());
        let name_value = image.new_name.as_deref();
        for file in &self.values {
            run(file, false, &|text| {
                set_values(
                    text,
                    &self.path,
                    value,
                    self.name_path.as_deref(),
                    name_value,
                )
            })?;
        }
        for file in &self.manifests {
            run(file, false, &|text| manifest::set_image(text, &image))?;
        }
        for file in &self.argocd_sources {
            if self.argocd_source_helm {
                let mut parameters = Vec::new();
                if let Some(value) = value {
                    parameters.push(HelmParameter {
                        name: self.path.clone(),
                        value: value.to_owned(),
                    });
                }
                if let (Some(path), Some(name)) = (&self.name_path, name_value) {
                    parameters.push(HelmParameter {
                        name: path.clone(),
                        value: name.to_owned(),
                    });
                }
                run(file, true, &|text| {
                    argocd_source::set_helm_parameters(text, &parameters)
                })?;
            } else {
                run(file, true, &|text| {
                    argocd_source::set_kustomize_image(text, &image)
                })?;
            }
        }
        Ok(Applied { image, changes })
    }

    /// The image's current tag in the first target that has one.
    fn current_tag(&self, root: &Path, kustomizations: &[PathBuf]) -> anyhow::Result<Current> {
        let read = |file: &Path| {
            std::fs::read_to_string(root.join(file))
                .with_context(|| format!("{}: cannot read", file.display()))
        };
        let in_file =
            |file: &Path, error| anyhow::Error::new(error).context(file.display().to_string());
        for file in kustomizations {
            let images = kustomization::images(&read(file)?).map_err(|e| in_file(file, e))?;
            let entry = images
                .into_iter()
                .find(|entry| entry.name == self.image.name);
            if let Some(entry) = entry
                && let Some(tag) = entry.new_tag
            {
                let (file, new_name) = (file.clone(), entry.new_name);
                return Ok(Current {
                    tag,
                    file,
                    new_name,
                });
            }
        }
        for file in &self.values {
            if let Some(tag) =
                helm_values::get(&read(file)?, &self.path).map_err(|e| in_file(file, e))?
            {
                let (file, new_name) = (file.clone(), None);
                return Ok(Current {
                    tag,
                    file,
                    new_name,
                });
            }
        }
        for file in &self.manifests {
            let images =
                manifest::images(&read(file)?, &self.image.name).map_err(|e| in_file(file, e))?;
            if let Some(tag) = images.iter().find_map(|image| image.tag()) {
                let (tag, file, new_name) = (tag.to_owned(), file.clone(), None);
                return Ok(Current {
                    tag,
                    file,
                    new_name,
                });
            }
        }
        bail!(
            "--bump: no current tag of {} found in the kustomizations, values files (at {}) or              manifests given",
            self.image.name,
            self.path
        )
    }
}

/// Where --bump found the current tag.
struct Current {
    tag: String,
    file: PathBuf,
    /// The kustomization entry's newName.
    new_name: Option<String>,
}

type EditResult = Result<Edited, ferry_image::EditError>;

fn set_values(
    text: &str,
    path: &str,
    value: Option<&str>,
    name_path: Option<&str>,
    name: Option<&str>,
) -> Result<Edited, ferry_image::EditError> {
    let mut edited = Edited {
        text: text.to_owned(),
        changes: Vec::new(),
    };
    let mut writes: Vec<(&str, &str)> = Vec::new();
    if let Some(value) = value {
        writes.push((path, value));
    }
    if let (Some(path), Some(name)) = (name_path, name) {
        writes.push((path, name));
    }
    if writes.is_empty() {
        return Err(ferry_image::EditError::Invalid(
            "the image gives neither a tag nor a digest (nor a new name with --name-path)".into(),
        ));
    }
    for (path, value) in writes {
        let next = helm_values::set(&edited.text, path, value)?;
        edited.text = next.text;
        edited.changes.extend(next.changes);
    }
    Ok(edited)
}

/// Run `edit` on `root/file`, errors naming `file` as given.
fn edit_at(
    root: &Path,
    file: &Path,
    create: bool,
    dry_run: bool,
    edit: &dyn Fn(&str) -> EditResult,
) -> anyhow::Result<Edited> {
    let absolute = root.join(file);
    let result = if dry_run {
        let text = match std::fs::read_to_string(&absolute) {
            Err(e) if create && e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
            other => other,
        };
        text.map_err(|source| FileError::Io {
            path: absolute.clone(),
            source,
        })
        .and_then(|text| {
            edit(&text).map_err(|source| FileError::Edit {
                path: absolute.clone(),
                source,
            })
        })
    } else {
        edit_file(&absolute, create, edit)
    };
    result.map_err(|e| match e {
        FileError::Edit { source, .. } => anyhow::anyhow!("{}: {source}", file.display()),
        FileError::Io { source, .. } => anyhow::anyhow!("{}: {source}", file.display()),
    })
}

/// The kustomization file a --kustomization names (a directory's, or the file itself).
fn kustomization_file(root: &Path, given: &Path) -> anyhow::Result<PathBuf> {
    let absolute = root.join(given);
    if absolute.is_dir() {
        let found = kustomization::find(&absolute).with_context(|| {
            format!(
                "{}: no kustomization file ({})",
                given.display(),
                kustomization::FILE_NAMES.join(", ")
            )
        })?;
        Ok(given.join(found.file_name().expect("a file name")))
    } else {
        Ok(given.to_owned())
    }
}

/// A target path: relative, and staying inside the checkout or repository.
fn confine(path: &Path) -> anyhow::Result<PathBuf> {
    let escapes = path.components().any(|c| {
        matches!(
            c,
            Component::ParentDir | Component::RootDir | Component::Prefix(_)
        )
    });
    if escapes || path.as_os_str().is_empty() {
        bail!(
            "{}: target paths are relative to the checkout or repository and stay inside it",
            path.display()
        );
    }
    Ok(path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authors_and_paths_are_checked() {
        let author = parse_author("CI Bot <ci@example.com>").unwrap();
        assert_eq!(
            (author.name.as_str(), author.email.as_str()),
            ("CI Bot", "ci@example.com")
        );
        for bad in ["ci@example.com", "<ci@example.com>", "CI <nope>"] {
            assert!(parse_author(bad).is_err(), "{bad}");
        }
        assert!(confine(Path::new("apps/web/values.yaml")).is_ok());
        for bad in ["/etc/passwd", "../x", "a/../../b", ""] {
            assert!(confine(Path::new(bad)).is_err(), "{bad}");
        }
    }
}
