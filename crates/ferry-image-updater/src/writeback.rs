//! Writing new tags back. `argocd`: the Application's spec, read-change-written as a merge patch
//! (`ferry_runtime::update`). `git`: one commit editing one file — `.argocd-source-<app>.yaml` (or
//! the named parameter file), the kustomization, or the Helm values file — made and pushed by
//! `ferry_git::push` with the repository's credentials; all changes of the app in that commit or
//! none (an edit that fails commits nothing), never an empty commit, retried on a moved branch.

use std::path::{Component, Path, PathBuf};

use ferry_git::push::{Author, PushOutcome, PushRequest, commit_and_push};
use ferry_git::{Credentials, RepoCredential};
use ferry_image::argocd_source::{self, HelmParameter};
use ferry_image::kustomization::{self, KustomizeImage};
use ferry_image::{Edited, helm_values};
use ferry_types::Application;
use kube::Api;

use crate::app_spec::{self, Kind, Target, full_name, set_image, tag_with_digest};
use crate::config::{AppConfig, GitTarget, GitWriteBack, HelmNames, ManagedImage};
use crate::plan::Change;
use crate::templates;

/// Why a write-back failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("{0}")]
    Invalid(String),
    #[error("updating the Application: {0}")]
    Kube(String),
    #[error("git write-back to {url}: {message}")]
    Git { url: String, message: String },
}

fn managed<'a>(config: &'a AppConfig, change: &Change) -> Option<&'a ManagedImage> {
    config
        .images
        .iter()
        .find(|i| i.alias == change.alias && i.image.name() == change.image)
}

/// The changes `app`'s spec does not already hold, applied to it.
pub fn apply_to_spec(
    app: &mut Application,
    config: &AppConfig,
    target: Target,
    changes: &[Change],
) -> Result<Vec<Change>, String> {
    let mut applied = Vec::new();
    for change in changes {
        let image = managed(config, change).ok_or("a change of an image not configured")?;
        if set_image(
            app,
            target,
            image,
            change.tag.as_deref(),
            change.digest.as_deref(),
        )? {
            applied.push(change.clone());
        }
    }
    Ok(applied)
}

/// `argocd`: writes the changes into the Application; returns those that were not yet there.
pub async fn to_application(
    api: &Api<Application>,
    app: &Application,
    config: &AppConfig,
    changes: &[Change],
) -> Result<Vec<Change>, WriteError> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let mut applied = Vec::new();
    let result = ferry_runtime::update(api, name, |current: &mut Application| {
        let target = app_spec::target(current, None)?;
        applied = apply_to_spec(current, config, target, changes)?;
        Ok::<_, String>(())
    })
    .await;
    match result {
        Ok(_) => Ok(applied),
        Err(ferry_runtime::UpdateError::Change(message)) => Err(WriteError::Invalid(message)),
        Err(ferry_runtime::UpdateError::NotFound) => {
            Err(WriteError::Kube(format!("Application {name} was deleted")))
        }
        Err(ferry_runtime::UpdateError::Kube(err)) => Err(WriteError::Kube(err.to_string())),
        Err(ferry_runtime::UpdateError::KeptChanging { attempts }) => Err(WriteError::Kube(
            format!("Application {name} kept changing over {attempts} attempts"),
        )),
    }
}

/// How git commits are made: author and message template (the updater's flags).
#[derive(Debug, Clone)]
pub struct CommitSettings {
    pub author: Author,
    pub message_template: String,
    /// The namespace Applications are named without a prefix in (Argo CD's control namespace).
    pub control_namespace: String,
    pub dry_run: bool,
}

/// A path inside the repository, relative to its root; `..` may not climb out of it.
fn confined(path: &Path) -> Result<PathBuf, String> {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return Err(format!("{} leaves the repository", path.display()));
                }
            }
            Component::Prefix(_) => return Err(format!("{} is not a path", path.display())),
        }
    }
    Ok(out)
}

/// `path` relative to the source's directory, or to the repository root when it starts
/// with `/`, as upstream resolves write-back targets.
fn resolve(source_path: &str, path: &str) -> Result<PathBuf, String> {
    match path.strip_prefix('/') {
        Some(from_root) => confined(Path::new(from_root)),
        None => confined(&Path::new(source_path).join(path)),
    }
}

/// The file a git write-back edits, relative to the repository root, and the source kind.
pub fn target_file(
    app: &Application,
    git: &GitWriteBack,
    source_path: &str,
    control_namespace: &str,
    work_tree: Option<&Path>,
) -> Result<PathBuf, String> {
    match &git.target {
        GitTarget::ParameterFile(None) => {
            let name = app.metadata.name.as_deref().unwrap_or_default();
            let namespace = app
                .metadata
                .namespace
                .as_deref()
                .filter(|ns| *ns != control_namespace);
            resolve(source_path, &argocd_source::file_name(name, namespace))
        }
        GitTarget::ParameterFile(Some(path)) => confined(Path::new(path)),
        GitTarget::HelmValues(path) => {
            resolve(source_path, path.as_deref().unwrap_or("values.yaml"))
        }
        GitTarget::Kustomization(path) => {
            let dir = resolve(source_path, path.as_deref().unwrap_or("."))?;
            let found = work_tree.and_then(|root| kustomization::find(&root.join(&dir)));
            Ok(match found {
                Some(file) => dir.join(file.file_name().unwrap_or_default()),
                None => dir.join(kustomization::FILE_NAMES[0]),
            })
        }
    }
}

/// The kind the target implies, if it implies one.
pub fn target_kind(git: &GitWriteBack) -> Option<Kind> {
    match git.target {
        GitTarget::Kustomization(_) => Some(Kind::Kustomize),
        GitTarget::HelmValues(_) => Some(Kind::Helm),
        GitTarget::ParameterFile(_) => None,
    }
}

fn kustomize_image(image: &ManagedImage, change: &Change) -> KustomizeImage {
    KustomizeImage {
        name: image
            .kustomize_name
            .clone()
            .unwrap_or_else(|| image.image.name().to_string()),
        new_name: image
            .kustomize_name
            .as_ref()
            .map(|_| image.image.name().to_string()),
        new_tag: change.tag.clone(),
        digest: change.digest.clone(),
    }
}

/// The Helm parameters/values of one change: `(path, value)`.
fn helm_values_of(image: &ManagedImage, change: &Change) -> Vec<(String, String)> {
    let (tag, digest) = (change.tag.as_deref(), change.digest.as_deref());
    match &image.helm {
        HelmNames::Spec(spec) => vec![(spec.clone(), full_name(image.image.name(), tag, digest))],
        HelmNames::NameAndTag { name, tag: tag_key } => vec![
            (name.clone(), image.image.name().to_string()),
            (tag_key.clone(), tag_with_digest(tag, digest)),
        ],
    }
}

/// Edits the text of the target file for every change; the caller writes it once.
fn edit_text(
    text: &str,
    config: &AppConfig,
    git: &GitWriteBack,
    kind: Kind,
    changes: &[Change],
) -> Result<Edited, String> {
    let mut current = Edited {
        text: text.to_string(),
        changes: Vec::new(),
    };
    for change in changes {
        let image = managed(config, change).ok_or("a change of an image not configured")?;
        let edited = match (&git.target, kind) {
            (GitTarget::Kustomization(_), _) => {
                kustomization::set_image(&current.text, &kustomize_image(image, change))
            }
            (GitTarget::HelmValues(_), _) => {
                let mut step = Edited {
                    text: current.text.clone(),
                    changes: Vec::new(),
                };
                for (path, value) in helm_values_of(image, change) {
                    let next =
                        helm_values::set(&step.text, &path, &value).map_err(|e| e.to_string())?;
                    step.text = next.text;
                    step.changes.extend(next.changes);
                }
                Ok(step)
            }
            (GitTarget::ParameterFile(_), Kind::Kustomize) => {
                argocd_source::set_kustomize_image(&current.text, &kustomize_image(image, change))
            }
            (GitTarget::ParameterFile(_), Kind::Helm) => {
                let parameters: Vec<HelmParameter> = helm_values_of(image, change)
                    .into_iter()
                    .map(|(name, value)| HelmParameter { name, value })
                    .collect();
                argocd_source::set_helm_parameters(&current.text, &parameters)
            }
        }
        .map_err(|e| e.to_string())?;
        current.text = edited.text;
        current.changes.extend(edited.changes);
    }
    Ok(current)
}

/// Credentials for the push: the repository's (Secrets of Argo CD's kinds, as the controller
/// reads them) or the named Secret's (`username`/`password`, or `sshPrivateKey`).
pub fn secret_credential(data: &std::collections::BTreeMap<String, Vec<u8>>) -> RepoCredential {
    let text = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.clone()).ok())
            .filter(|v| !v.is_empty())
    };
    RepoCredential {
        username: text("username"),
        password: text("password"),
        ssh_private_key: text("sshPrivateKey"),
        ..Default::default()
    }
}

/// What a git write-back did.
#[derive(Debug, Clone, PartialEq)]
pub struct GitWritten {
    pub outcome: PushOutcome,
    pub file: PathBuf,
    pub changes: Vec<Change>,
}

/// The branch `HEAD` of the repository at `url` points to.
async fn default_branch(
    credentials: &Credentials,
    url: &str,
    project: &str,
) -> Result<String, WriteError> {
    let git_error = |message: String| WriteError::Git {
        url: url.to_string(),
        message,
    };
    let cache =
        ferry_git::RepoCache::new(std::env::temp_dir(), credentials.clone()).for_project(project);
    let refs = cache
        .ls_remote(url)
        .await
        .map_err(|e| git_error(e.to_string()))?;
    refs.iter()
        .find(|r| r.name == "HEAD")
        .and_then(|r| r.symref_target.as_deref())
        .and_then(|target| target.strip_prefix("refs/heads/"))
        .map(String::from)
        .ok_or_else(|| {
            git_error(
                "its HEAD names no branch: set the branch to commit to (git-branch / gitConfig.branch)"
                    .into(),
            )
        })
}

/// The repository a git write-back pushes to: the configured one, else the updated source's.
pub fn repository_url(app: &Application, git: &GitWriteBack) -> Result<String, String> {
    if let Some(url) = &git.repository {
        return Ok(url.clone());
    }
    let target = app_spec::target(app, target_kind(git))?;
    app.sources()
        .get(target.index)
        .map(|s| s.repo_url.clone())
        .ok_or_else(|| "the application has no source".into())
}

/// `git`: commits the changes to the target file of the app's repository and pushes.
pub async fn to_git(
    app: &Application,
    config: &AppConfig,
    git: &GitWriteBack,
    changes: Vec<Change>,
    credentials: Credentials,
    settings: &CommitSettings,
) -> Result<GitWritten, WriteError> {
    let invalid = |m: String| WriteError::Invalid(m);
    let target = app_spec::target(app, target_kind(git)).map_err(invalid)?;
    let source = app
        .sources()
        .get(target.index)
        .cloned()
        .ok_or_else(|| invalid("the application has no source".into()))?;
    let url = git
        .repository
        .clone()
        .unwrap_or_else(|| source.repo_url.clone());
    // The branch checked out: the named one, else the source's revision (for several sources,
    // the one of the source with that repository).
    let revision = app
        .sources()
        .iter()
        .find(|s| s.repo_url == url)
        .map(|s| s.target_revision.clone())
        .unwrap_or_else(|| source.target_revision.clone());
    let mut branch = git.branch.clone().unwrap_or(revision);
    if branch.is_empty() || branch == "HEAD" {
        // As upstream: the branch the repository's HEAD points to.
        branch = default_branch(&credentials, &url, app.project()).await?;
    }
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
    let write_branch = git
        .write_branch
        .as_deref()
        .map(|t| templates::branch_name(t, namespace, name, &changes))
        .transpose()
        .map_err(invalid)?;
    let message =
        templates::commit_message(&settings.message_template, name, &changes).map_err(invalid)?;
    let mut request = PushRequest::new(&url, &branch, &message, settings.author.clone());
    request.project = Some(app.project().to_string());
    request.target_branch = write_branch;
    request.dry_run = settings.dry_run;
    let config = config.clone();
    let git = git.clone();
    let app = app.clone();
    let control_namespace = settings.control_namespace.clone();
    let source_path = source.path.clone();
    let url_for_error = url.clone();
    let all_changes = changes.clone();
    let result = tokio::task::spawn_blocking(move || {
        commit_and_push(&credentials, &request, |root: &Path| {
            let file = target_file(&app, &git, &source_path, &control_namespace, Some(root))?;
            let path = root.join(&file);
            // A kustomization must exist; a parameter or values file is made.
            let create = !matches!(git.target, GitTarget::Kustomization(_));
            let edited = ferry_image::edit_file(&path, create, |text| {
                edit_text(text, &config, &git, target.kind, &changes)
                    .map_err(ferry_image::EditError::Invalid)
            })
            .map_err(|e| e.to_string())?;
            Ok::<_, String>((file, edited))
        })
    })
    .await
    .map_err(|e| WriteError::Git {
        url: url_for_error.clone(),
        message: e.to_string(),
    })?;
    let (outcome, (file, _edited)) = result.map_err(|e| WriteError::Git {
        url: url_for_error,
        message: e.to_string(),
    })?;
    let changes = match &outcome {
        PushOutcome::Unchanged { .. } => Vec::new(),
        _ => all_changes,
    };
    Ok(GitWritten {
        outcome,
        file,
        changes,
    })
}
