//! What to update in one Application, read from its `argocd-image-updater.argoproj.io/*`
//! annotations ([`from_annotations`]) or from an `ImageUpdater` application reference
//! ([`from_image_updater`]), checked before anything is asked of a registry: every invalid
//! setting is an error naming its annotation or field.

use std::collections::BTreeMap;
use std::fmt;

use ferry_image::ImageRef;
use ferry_types::image_updater::{
    ApplicationRef, CommonUpdateSettings, ImageConfig, ImageUpdater, ImagesVerification,
    ManifestTarget, WriteBackConfig,
};

use crate::strategy::{AllowTags, IgnoreTags, Policy, Strategy, parse_platform, runtime_platform};

/// Prefix of every annotation.
pub const PREFIX: &str = "argocd-image-updater.argoproj.io";
pub const IMAGE_LIST: &str = "argocd-image-updater.argoproj.io/image-list";
pub const WRITE_BACK_METHOD: &str = "argocd-image-updater.argoproj.io/write-back-method";
pub const WRITE_BACK_TARGET: &str = "argocd-image-updater.argoproj.io/write-back-target";
pub const GIT_BRANCH: &str = "argocd-image-updater.argoproj.io/git-branch";
pub const GIT_REPOSITORY: &str = "argocd-image-updater.argoproj.io/git-repository";

/// Helm parameters used when none are named, as upstream.
pub const DEFAULT_HELM_IMAGE_NAME: &str = "image.name";
pub const DEFAULT_HELM_IMAGE_TAG: &str = "image.tag";

/// A setting that cannot be used, and where it was set.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{origin}: {message}")]
pub struct ConfigError {
    /// `annotation <key>` or `ImageUpdater <ns>/<name> <field path>`.
    pub origin: String,
    pub message: String,
}

impl ConfigError {
    fn new(origin: &str, message: impl fmt::Display) -> Self {
        Self {
            origin: origin.to_string(),
            message: message.to_string(),
        }
    }
}

/// Where an image's parameters go in Helm values / parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelmNames {
    /// `<name>` gets the image name, `<tag>` the tag.
    NameAndTag { name: String, tag: String },
    /// One parameter gets `name:tag`.
    Spec(String),
}

impl Default for HelmNames {
    fn default() -> Self {
        Self::NameAndTag {
            name: DEFAULT_HELM_IMAGE_NAME.into(),
            tag: DEFAULT_HELM_IMAGE_TAG.into(),
        }
    }
}

/// One image to keep up to date.
#[derive(Debug, Clone)]
pub struct ManagedImage {
    /// Empty for an image listed without one.
    pub alias: String,
    /// The image to look up in its registry (no tag).
    pub image: ImageRef,
    pub policy: Policy,
    pub pull_secret: Option<String>,
    /// Update even when the Application does not run the image.
    pub force_update: bool,
    pub helm: HelmNames,
    /// The image's name in the kustomization's `images` when it differs from [`Self::image`].
    pub kustomize_name: Option<String>,
}

/// How the new tags are written.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum WriteBack {
    /// Into the Application's `spec` (Helm parameters, Kustomize images).
    #[default]
    Argocd,
    Git(GitWriteBack),
}

/// Whose credentials push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitCredentials {
    /// The repository Secret (or credential template) Argo CD uses for the repository.
    RepoCreds,
    /// `git:secret:<namespace>/<name>`: a Secret with `username`/`password` or `sshPrivateKey`.
    Secret { namespace: String, name: String },
}

/// What file a git write-back edits, as written (paths are resolved against the source path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GitTarget {
    /// `.argocd-source-<app>.yaml` in the source's directory, or the named override file.
    ParameterFile(Option<String>),
    /// `kustomization[:<path>]`: the kustomization's `images`.
    Kustomization(Option<String>),
    /// `helmvalues[:<path>]`: a values file (`values.yaml` by default).
    HelmValues(Option<String>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitWriteBack {
    pub credentials: GitCredentials,
    /// Another repository than the source's.
    pub repository: Option<String>,
    /// The branch checked out (the source's targetRevision when unset).
    pub branch: Option<String>,
    /// `base:target`: the branch pushed to, a template over the changes.
    pub write_branch: Option<String>,
    pub target: GitTarget,
}

/// Everything to do for one Application.
#[derive(Debug, Clone)]
pub struct AppConfig {
    pub images: Vec<ManagedImage>,
    pub write_back: WriteBack,
}

/// A setting and where it came from, so an error can name it.
#[derive(Debug, Clone)]
struct Setting<T> {
    value: T,
    origin: String,
}

/// `commonUpdateSettings` merged over the levels that set them.
#[derive(Debug, Clone, Default)]
struct Settings {
    strategy: Option<Setting<String>>,
    force_update: Option<Setting<bool>>,
    allow_tags: Option<Setting<String>>,
    ignore_tags: Option<Setting<Vec<String>>>,
    pull_secret: Option<Setting<String>>,
    platforms: Option<Setting<Vec<String>>>,
}

impl Settings {
    /// Overrides what `settings` sets; `path` names its fields.
    fn overlay(&mut self, settings: Option<&CommonUpdateSettings>, path: &str) {
        let Some(s) = settings else { return };
        let at = |field: &str| format!("{path}.commonUpdateSettings.{field}");
        fn set<T: Clone>(slot: &mut Option<Setting<T>>, value: &Option<T>, origin: String) {
            if let Some(value) = value {
                *slot = Some(Setting {
                    value: value.clone(),
                    origin,
                });
            }
        }
        set(&mut self.strategy, &s.update_strategy, at("updateStrategy"));
        set(&mut self.force_update, &s.force_update, at("forceUpdate"));
        set(&mut self.allow_tags, &s.allow_tags, at("allowTags"));
        set(&mut self.ignore_tags, &s.ignore_tags, at("ignoreTags"));
        set(&mut self.pull_secret, &s.pull_secret, at("pullSecret"));
        set(&mut self.platforms, &s.platforms, at("platforms"));
    }
}

/// The annotation key of a per-image setting: `/` in an alias is written `_`.
fn alias_key(alias: &str, setting: &str) -> String {
    if alias.is_empty() {
        format!("{PREFIX}/{setting}")
    } else {
        format!("{PREFIX}/{}.{setting}", alias.replace('/', "_"))
    }
}

/// Reads the annotations of an Application; `None` when it has no `image-list`.
pub fn from_annotations(
    annotations: &BTreeMap<String, String>,
) -> Option<Result<AppConfig, ConfigError>> {
    let list = annotations.get(IMAGE_LIST)?;
    Some(read_annotations(annotations, list))
}

fn read_annotations(
    annotations: &BTreeMap<String, String>,
    list: &str,
) -> Result<AppConfig, ConfigError> {
    let origin = format!("annotation {IMAGE_LIST}");
    let get = |key: &str| {
        annotations
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    };
    let mut images = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (alias, image_name) = match entry.split_once('=') {
            Some((alias, image)) => (alias.trim(), image.trim()),
            None => ("", entry),
        };
        if image_name.is_empty() {
            return Err(ConfigError::new(
                &origin,
                format!("empty image name for alias {alias:?}"),
            ));
        }
        let setting = |name: &str| {
            let key = alias_key(alias, name);
            get(&key).map(|value| Setting {
                value: value.to_string(),
                origin: format!("annotation {key}"),
            })
        };
        let list_setting = |name: &str| {
            setting(name).map(|s| Setting {
                value: s.value.split(',').map(|v| v.trim().to_string()).collect(),
                origin: s.origin,
            })
        };
        let force_update = match setting("force-update") {
            None => None,
            Some(s) => Some(Setting {
                value: parse_bool(&s.value).ok_or_else(|| {
                    ConfigError::new(&s.origin, format!("{:?} is not a boolean", s.value))
                })?,
                origin: s.origin,
            }),
        };
        let settings = Settings {
            strategy: setting("update-strategy"),
            force_update,
            allow_tags: setting("allow-tags"),
            ignore_tags: list_setting("ignore-tags"),
            pull_secret: setting("pull-secret"),
            platforms: list_setting("platforms"),
        };
        let mut targets = ManifestTarget::default();
        let mut target_origin = String::new();
        if !alias.is_empty() {
            let named = |name: &str| setting(name).map(|s| s.value);
            if let Some(name) = named("helm.image-name") {
                targets.helm.get_or_insert_default().name = Some(name);
            }
            if let Some(tag) = named("helm.image-tag") {
                targets.helm.get_or_insert_default().tag = Some(tag);
            }
            if let Some(spec) = named("helm.image-spec") {
                targets.helm.get_or_insert_default().spec = Some(spec);
            }
            if let Some(name) = named("kustomize.image-name") {
                targets.kustomize.get_or_insert_default().name = Some(name);
            }
            target_origin = format!("annotations {}", alias_key(alias, "{helm,kustomize}.*"));
        }
        images.push(managed_image(
            alias,
            image_name,
            &origin,
            &settings,
            Some(&targets),
            &target_origin,
        )?);
    }
    if images.is_empty() {
        return Err(ConfigError::new(&origin, "lists no image"));
    }
    check_unique_aliases(&images, &origin)?;
    let write_back = WriteBackConfig {
        method: get(WRITE_BACK_METHOD).map(Into::into),
        git_config: if [WRITE_BACK_TARGET, GIT_BRANCH, GIT_REPOSITORY]
            .iter()
            .any(|key| get(key).is_some())
        {
            Some(ferry_types::image_updater::GitConfig {
                repository: get(GIT_REPOSITORY).map(Into::into),
                branch: get(GIT_BRANCH).map(Into::into),
                write_back_target: get(WRITE_BACK_TARGET).map(Into::into),
                ..Default::default()
            })
        } else {
            None
        },
        ..Default::default()
    };
    let write_back = write_back_config(
        Some(&write_back),
        &WriteBackNames {
            method: format!("annotation {WRITE_BACK_METHOD}"),
            branch: format!("annotation {GIT_BRANCH}"),
            target: format!("annotation {WRITE_BACK_TARGET}"),
            pull_request: String::new(),
        },
    )?;
    Ok(AppConfig { images, write_back })
}

/// Go's `strconv.ParseBool`.
fn parse_bool(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

fn check_unique_aliases(images: &[ManagedImage], origin: &str) -> Result<(), ConfigError> {
    let mut seen = std::collections::BTreeSet::new();
    for image in images.iter().filter(|i| !i.alias.is_empty()) {
        if !seen.insert(image.alias.as_str()) {
            return Err(ConfigError::new(
                origin,
                format!("alias {:?} is used twice", image.alias),
            ));
        }
    }
    Ok(())
}

/// Splits `name[:constraint]`: the constraint follows the last `:` after the last `/` (a
/// registry port comes before a `/`).
pub(crate) fn split_constraint(text: &str) -> (&str, Option<&str>) {
    let after_slash = text.rfind('/').map_or(0, |i| i + 1);
    match text[after_slash..].find(':') {
        Some(at) => {
            let at = after_slash + at;
            (
                &text[..at],
                Some(text[at + 1..].trim()).filter(|c| !c.is_empty()),
            )
        }
        None => (text, None),
    }
}

fn managed_image(
    alias: &str,
    image_name: &str,
    image_origin: &str,
    settings: &Settings,
    targets: Option<&ManifestTarget>,
    target_origin: &str,
) -> Result<ManagedImage, ConfigError> {
    let (name, constraint) = split_constraint(image_name);
    let image = ImageRef::parse(name).map_err(|err| ConfigError::new(image_origin, err))?;
    let strategy = match &settings.strategy {
        Some(s) => Strategy::parse(&s.value).map_err(|err| ConfigError::new(&s.origin, err))?,
        None => Strategy::default(),
    };
    let allow_tags = match &settings.allow_tags {
        Some(s) => AllowTags::parse(&s.value).map_err(|err| ConfigError::new(&s.origin, err))?,
        None => AllowTags::Any,
    };
    let ignore_tags = match &settings.ignore_tags {
        Some(s) => IgnoreTags::parse(s.value.iter().map(String::as_str))
            .map_err(|err| ConfigError::new(&s.origin, err))?,
        None => IgnoreTags::default(),
    };
    let platforms = match &settings.platforms {
        Some(s) => s
            .value
            .iter()
            .filter(|p| !p.trim().is_empty())
            .map(|p| parse_platform(p).map_err(|err| ConfigError::new(&s.origin, err)))
            .collect::<Result<Vec<_>, _>>()?,
        None if strategy.needs_metadata() => vec![runtime_platform()],
        None => Vec::new(),
    };
    let policy = Policy {
        strategy,
        constraint: constraint.map(Into::into),
        allow_tags,
        ignore_tags,
        platforms,
    };
    policy
        .validate()
        .map_err(|err| ConfigError::new(image_origin, format!("image {image_name:?}: {err}")))?;
    if let Some(s) = &settings.pull_secret {
        s.value
            .parse::<ferry_registry::CredentialSource>()
            .map_err(|err| ConfigError::new(&s.origin, err))?;
    }
    let mut helm = HelmNames::default();
    let mut kustomize_name = None;
    if let Some(targets) = targets {
        let exclusive = [
            targets.helm.is_some(),
            targets.kustomize.is_some(),
            targets.plugin.is_some(),
        ];
        if exclusive.iter().filter(|set| **set).count() > 1 {
            return Err(ConfigError::new(
                target_origin,
                "at most one of helm, kustomize and plugin targets may be set",
            ));
        }
        if targets.plugin.is_some() {
            return Err(ConfigError::new(
                target_origin,
                "plugin targets are not supported by ferry's image updater",
            ));
        }
        if let Some(h) = &targets.helm {
            helm = match (&h.spec, &h.name, &h.tag) {
                (Some(spec), _, _) => HelmNames::Spec(spec.clone()),
                (None, name, tag) => HelmNames::NameAndTag {
                    name: name
                        .clone()
                        .unwrap_or_else(|| DEFAULT_HELM_IMAGE_NAME.into()),
                    tag: tag.clone().unwrap_or_else(|| DEFAULT_HELM_IMAGE_TAG.into()),
                },
            };
        }
        if let Some(k) = &targets.kustomize {
            let name = k.name.clone().ok_or_else(|| {
                ConfigError::new(target_origin, "a kustomize target needs its name")
            })?;
            ImageRef::parse(&name).map_err(|err| ConfigError::new(target_origin, err))?;
            kustomize_name = Some(name);
        }
    }
    Ok(ManagedImage {
        alias: alias.into(),
        image,
        policy,
        pull_secret: settings.pull_secret.as_ref().map(|s| s.value.clone()),
        force_update: settings.force_update.as_ref().is_some_and(|s| s.value),
        helm,
        kustomize_name,
    })
}

struct WriteBackNames {
    method: String,
    branch: String,
    target: String,
    pull_request: String,
}

fn write_back_config(
    config: Option<&WriteBackConfig>,
    names: &WriteBackNames,
) -> Result<WriteBack, ConfigError> {
    let Some(config) = config else {
        return Ok(WriteBack::Argocd);
    };
    let method = config.method.as_deref().map(str::trim).unwrap_or("argocd");
    if method == "argocd" {
        return Ok(WriteBack::Argocd);
    }
    let (kind, credentials) = match method.split_once(':') {
        Some((kind, credentials)) => (kind, credentials),
        None => (method, "repocreds"),
    };
    if kind != "git" {
        return Err(ConfigError::new(
            &names.method,
            format!(
                "unknown write-back method {method:?} (argocd, git, git:repocreds or git:secret:<namespace>/<name>)"
            ),
        ));
    }
    let credentials = match credentials.split_once(':') {
        None if credentials == "repocreds" => GitCredentials::RepoCreds,
        Some(("secret", reference)) => match reference.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() => {
                GitCredentials::Secret {
                    namespace: namespace.into(),
                    name: name.into(),
                }
            }
            _ => {
                return Err(ConfigError::new(
                    &names.method,
                    format!("{method:?}: the secret is <namespace>/<name>"),
                ));
            }
        },
        _ => {
            return Err(ConfigError::new(
                &names.method,
                format!(
                    "unknown git credentials {credentials:?} (repocreds or secret:<namespace>/<name>)"
                ),
            ));
        }
    };
    let git = config.git_config.clone().unwrap_or_default();
    if git.pull_request.is_some() {
        return Err(ConfigError::new(
            &names.pull_request,
            "pull requests are not supported by ferry's image updater",
        ));
    }
    let (branch, write_branch) = match git.branch.as_deref().map(str::trim) {
        None | Some("") => (None, None),
        Some(branch) => {
            let parts: Vec<&str> = branch.split(':').collect();
            match parts.as_slice() {
                [base] => (Some(base.to_string()), None),
                [base, target] => (
                    Some(base.to_string()).filter(|b| !b.is_empty()),
                    Some(target.to_string()).filter(|t| !t.is_empty()),
                ),
                _ => {
                    return Err(ConfigError::new(
                        &names.branch,
                        format!("invalid branch {branch:?} (<branch> or <base>:<target>)"),
                    ));
                }
            }
        }
    };
    let target = match git.write_back_target.as_deref().map(str::trim) {
        None | Some("") => GitTarget::ParameterFile(None),
        Some(text) => parse_target(text).map_err(|err| ConfigError::new(&names.target, err))?,
    };
    Ok(WriteBack::Git(GitWriteBack {
        credentials,
        repository: git.repository.filter(|r| !r.trim().is_empty()),
        branch,
        write_branch,
        target,
    }))
}

fn parse_target(text: &str) -> Result<GitTarget, String> {
    let with_path = |rest: &str| Some(rest.to_string()).filter(|p| !p.is_empty());
    if text == "kustomization" {
        return Ok(GitTarget::Kustomization(None));
    }
    if let Some(rest) = text.strip_prefix("kustomization:") {
        return Ok(GitTarget::Kustomization(with_path(rest)));
    }
    if text == "helmvalues" {
        return Ok(GitTarget::HelmValues(None));
    }
    if let Some(rest) = text.strip_prefix("helmvalues:") {
        return Ok(GitTarget::HelmValues(with_path(rest)));
    }
    let base = text.rsplit('/').next().unwrap_or(text);
    if ferry_image::kustomization::FILE_NAMES.contains(&base) {
        return Err(format!(
            "{text:?} is a kustomization: parameter overrides would replace its content; use kustomization:<path> to edit its images"
        ));
    }
    Ok(GitTarget::ParameterFile(Some(text.to_string())))
}

/// Reads application reference `index` of `updater` (not for `useAnnotations` references).
pub fn from_image_updater(updater: &ImageUpdater, index: usize) -> Result<AppConfig, ConfigError> {
    let object = format!(
        "ImageUpdater {}/{}",
        updater.metadata.namespace.as_deref().unwrap_or_default(),
        updater.metadata.name.as_deref().unwrap_or_default()
    );
    let spec = &updater.spec;
    let reference: &ApplicationRef = &spec.application_refs[index];
    let ref_path = format!("{object} spec.applicationRefs[{index}]");
    let mut settings = Settings::default();
    settings.overlay(
        spec.common_update_settings.as_ref(),
        &format!("{object} spec"),
    );
    settings.overlay(reference.common_update_settings.as_ref(), &ref_path);
    let mut verification = spec.images_verification.as_ref();
    if reference.images_verification.is_some() {
        verification = reference.images_verification.as_ref();
    }
    let mut images = Vec::new();
    for (i, image) in reference.images.iter().enumerate() {
        let path = format!("{ref_path}.images[{i}]");
        images.push(image_from_config(image, &path, &settings, verification)?);
    }
    if images.is_empty() {
        return Err(ConfigError::new(
            &format!("{ref_path}.images"),
            "lists no image (or set useAnnotations: true)",
        ));
    }
    check_unique_aliases(&images, &format!("{ref_path}.images"))?;
    let write_back = reference
        .write_back_config
        .as_ref()
        .or(spec.write_back_config.as_ref());
    let level = if reference.write_back_config.is_some() {
        ref_path.clone()
    } else {
        format!("{object} spec")
    };
    let write_back = write_back_config(
        write_back,
        &WriteBackNames {
            method: format!("{level}.writeBackConfig.method"),
            branch: format!("{level}.writeBackConfig.gitConfig.branch"),
            target: format!("{level}.writeBackConfig.gitConfig.writeBackTarget"),
            pull_request: format!("{level}.writeBackConfig.gitConfig.pullRequest"),
        },
    )?;
    Ok(AppConfig { images, write_back })
}

fn image_from_config(
    image: &ImageConfig,
    path: &str,
    inherited: &Settings,
    verification: Option<&ImagesVerification>,
) -> Result<ManagedImage, ConfigError> {
    let alias_ok = image
        .alias
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && image
            .alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if !alias_ok {
        return Err(ConfigError::new(
            &format!("{path}.alias"),
            format!(
                "{:?} is not an alias (letters, digits, -, . and _)",
                image.alias
            ),
        ));
    }
    let verification = image.images_verification.as_ref().or(verification);
    if verification.is_some_and(ImagesVerification::is_enabled) {
        return Err(ConfigError::new(
            &format!("{path}.imagesVerification"),
            "signature verification is not supported by ferry's image updater; the image is not updated unverified",
        ));
    }
    let mut settings = inherited.clone();
    settings.overlay(image.common_update_settings.as_ref(), path);
    managed_image(
        &image.alias,
        &image.image_name,
        &format!("{path}.imageName"),
        &settings,
        image.manifest_targets.as_ref(),
        &format!("{path}.manifestTargets"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotations(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| {
                let key = if k.contains('/') {
                    k.to_string()
                } else {
                    format!("{PREFIX}/{k}")
                };
                (key, v.to_string())
            })
            .collect()
    }

    fn read(pairs: &[(&str, &str)]) -> Result<AppConfig, ConfigError> {
        from_annotations(&annotations(pairs)).expect("has an image list")
    }

    #[test]
    fn no_image_list_is_not_managed() {
        assert!(from_annotations(&annotations(&[("nginx.update-strategy", "semver")])).is_none());
    }

    #[test]
    fn the_image_list_with_aliases_constraints_and_settings() {
        let config = read(&[
            (
                "image-list",
                "nginx=nginx:~1.26, app=registry.local:5000/team/app, quay.io/x/y:1.x",
            ),
            ("nginx.update-strategy", "semver"),
            ("nginx.ignore-tags", "1.26.0, 1.26.1"),
            ("nginx.helm.image-name", "nginx.image.repository"),
            ("nginx.helm.image-tag", "nginx.image.tag"),
            ("app.update-strategy", "latest"),
            ("app.allow-tags", "regexp:^[0-9a-f]{7}$"),
            ("app.platforms", "linux/arm64, linux/amd64"),
            ("app.force-update", "true"),
            ("app.kustomize.image-name", "team/app"),
            ("app.pull-secret", "pullsecret:argocd/regcred"),
        ])
        .unwrap();
        let [nginx, app, plain] = &config.images[..] else {
            panic!("three images")
        };
        assert_eq!(nginx.image.name(), "nginx");
        assert_eq!(nginx.policy.constraint.as_deref(), Some("~1.26"));
        assert_eq!(
            nginx.helm,
            HelmNames::NameAndTag {
                name: "nginx.image.repository".into(),
                tag: "nginx.image.tag".into()
            }
        );
        assert_eq!(app.image.name(), "registry.local:5000/team/app");
        assert_eq!(app.policy.constraint, None);
        assert_eq!(app.policy.strategy, Strategy::NewestBuild);
        assert_eq!(app.policy.platforms, ["linux/arm64", "linux/amd64"]);
        assert!(app.force_update);
        assert_eq!(app.kustomize_name.as_deref(), Some("team/app"));
        assert_eq!(
            app.pull_secret.as_deref(),
            Some("pullsecret:argocd/regcred")
        );
        assert_eq!(plain.alias, "");
        assert_eq!(plain.policy.constraint.as_deref(), Some("1.x"));
        assert_eq!(plain.helm, HelmNames::default());
        assert_eq!(config.write_back, WriteBack::Argocd);
    }

    #[test]
    fn slashes_in_aliases_are_underscores_in_keys() {
        let config = read(&[
            ("image-list", "argoproj/argocd=quay.io/argoproj/argocd"),
            ("argoproj_argocd.update-strategy", "alphabetical"),
        ])
        .unwrap();
        assert_eq!(config.images[0].policy.strategy, Strategy::Alphabetical);
    }

    #[test]
    fn bad_settings_name_their_annotation() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (
                &[("image-list", "a=nginx"), ("a.allow-tags", "regexp:^(")],
                "annotation argocd-image-updater.argoproj.io/a.allow-tags: invalid regular expression",
            ),
            (
                &[("image-list", "a=nginx:>=>1")],
                "annotation argocd-image-updater.argoproj.io/image-list: image \"nginx:>=>1\": invalid semver constraint",
            ),
            (
                &[("image-list", "a=nginx"), ("a.update-strategy", "newest")],
                "annotation argocd-image-updater.argoproj.io/a.update-strategy: unknown update strategy",
            ),
            (
                &[("image-list", "a=nginx"), ("a.update-strategy", "digest")],
                "the digest strategy needs the tag",
            ),
            (
                &[("image-list", "a=nginx"), ("a.force-update", "yes")],
                "annotation argocd-image-updater.argoproj.io/a.force-update: \"yes\" is not a boolean",
            ),
            (
                &[("image-list", "a=nginx"), ("a.platforms", "linux")],
                "annotation argocd-image-updater.argoproj.io/a.platforms: invalid platform",
            ),
            (
                &[
                    ("image-list", "a=nginx"),
                    ("a.pull-secret", "secret:ns/name"),
                ],
                "annotation argocd-image-updater.argoproj.io/a.pull-secret: invalid credential source",
            ),
            (
                &[("image-list", "a=Not An Image")],
                "annotation argocd-image-updater.argoproj.io/image-list: invalid image reference",
            ),
            (
                &[("image-list", "a=nginx,a=redis")],
                "alias \"a\" is used twice",
            ),
            (
                &[("image-list", "a=nginx"), ("write-back-method", "svn")],
                "annotation argocd-image-updater.argoproj.io/write-back-method: unknown write-back method",
            ),
            (
                &[
                    ("image-list", "a=nginx"),
                    ("write-back-method", "git"),
                    ("write-back-target", "base/kustomization.yaml"),
                ],
                "annotation argocd-image-updater.argoproj.io/write-back-target: \"base/kustomization.yaml\" is a kustomization",
            ),
            (
                &[
                    ("image-list", "a=nginx"),
                    ("write-back-method", "git"),
                    ("git-branch", "a:b:c"),
                ],
                "annotation argocd-image-updater.argoproj.io/git-branch: invalid branch",
            ),
            (
                &[
                    ("image-list", "a=nginx"),
                    ("a.helm.image-name", "x"),
                    ("a.kustomize.image-name", "nginx"),
                ],
                "at most one of helm, kustomize and plugin targets",
            ),
        ];
        for (pairs, expected) in cases {
            let err = read(pairs).unwrap_err().to_string();
            assert!(err.contains(expected), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn write_back_methods_branches_and_targets() {
        let git = |pairs: &[(&str, &str)]| match read(pairs).unwrap().write_back {
            WriteBack::Git(git) => git,
            other => panic!("{other:?}"),
        };
        let base = [("image-list", "nginx")];
        let plain = git(&[base[0], ("write-back-method", "git")]);
        assert_eq!(plain.credentials, GitCredentials::RepoCreds);
        assert_eq!(plain.target, GitTarget::ParameterFile(None));
        assert_eq!((plain.branch, plain.write_branch), (None, None));
        let full = git(&[
            base[0],
            ("write-back-method", "git:secret:argocd/git-creds"),
            ("git-branch", "main:image-updater-{{.SHA256}}"),
            ("write-back-target", "helmvalues:/charts/app/values.yaml"),
        ]);
        assert_eq!(
            full.credentials,
            GitCredentials::Secret {
                namespace: "argocd".into(),
                name: "git-creds".into()
            }
        );
        assert_eq!(full.branch.as_deref(), Some("main"));
        assert_eq!(
            full.write_branch.as_deref(),
            Some("image-updater-{{.SHA256}}")
        );
        assert_eq!(
            full.target,
            GitTarget::HelmValues(Some("/charts/app/values.yaml".into()))
        );
        let kustomize = git(&[
            base[0],
            ("write-back-method", "git:repocreds"),
            ("write-back-target", "kustomization:../base"),
        ]);
        assert_eq!(
            kustomize.target,
            GitTarget::Kustomization(Some("../base".into()))
        );
        let bare = git(&[
            base[0],
            ("write-back-method", "git"),
            ("write-back-target", "kustomization"),
        ]);
        assert_eq!(bare.target, GitTarget::Kustomization(None));
    }

    fn updater(yaml: &str) -> ImageUpdater {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn image_updater_levels_override_each_other() {
        let iu = updater(
            r#"apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: iu, namespace: argocd}
spec:
  commonUpdateSettings:
    updateStrategy: alphabetical
    ignoreTags: [latest]
  writeBackConfig:
    method: git
    gitConfig: {branch: main, writeBackTarget: "kustomization:."}
  applicationRefs:
    - namePattern: "app-*"
      commonUpdateSettings: {allowTags: "regexp:^v"}
      images:
        - alias: web
          imageName: "ghcr.io/org/web:^1.2"
          commonUpdateSettings: {updateStrategy: semver}
        - alias: worker
          imageName: ghcr.io/org/worker
          manifestTargets:
            helm: {spec: worker.image}
"#,
        );
        let config = from_image_updater(&iu, 0).unwrap();
        let [web, worker] = &config.images[..] else {
            panic!()
        };
        assert_eq!(web.policy.strategy, Strategy::Semver);
        assert_eq!(worker.policy.strategy, Strategy::Alphabetical);
        assert!(matches!(worker.policy.allow_tags, AllowTags::Regexp(_)));
        assert_eq!(worker.helm, HelmNames::Spec("worker.image".into()));
        let WriteBack::Git(git) = &config.write_back else {
            panic!()
        };
        assert_eq!(git.target, GitTarget::Kustomization(Some(".".into())));
        assert_eq!(git.branch.as_deref(), Some("main"));
    }

    #[test]
    fn image_updater_errors_name_the_field() {
        let iu = updater(
            r#"apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: iu, namespace: argocd}
spec:
  applicationRefs:
    - namePattern: "*"
      images:
        - alias: ok
          imageName: nginx
        - alias: web
          imageName: nginx
          commonUpdateSettings: {allowTags: "regexp:["}
"#,
        );
        let err = from_image_updater(&iu, 0).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "ImageUpdater argocd/iu spec.applicationRefs[0].images[1].commonUpdateSettings.allowTags: invalid regular expression"
            ),
            "{err}"
        );
        let iu = updater(
            r#"apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata: {name: iu, namespace: argocd}
spec:
  imagesVerification: {cosignKey: {secretName: k, key: cosign.pub}}
  applicationRefs:
    - namePattern: "*"
      images: [{alias: web, imageName: nginx}]
"#,
        );
        let err = from_image_updater(&iu, 0).unwrap_err().to_string();
        assert!(
            err.contains("images[0].imagesVerification: signature verification is not supported"),
            "{err}"
        );
    }

    #[test]
    fn constraints_split_after_the_last_slash() {
        assert_eq!(split_constraint("nginx:~1.26"), ("nginx", Some("~1.26")));
        assert_eq!(split_constraint("host:5000/app"), ("host:5000/app", None));
        assert_eq!(
            split_constraint("host:5000/app:>=1.0 <2"),
            ("host:5000/app", Some(">=1.0 <2"))
        );
        assert_eq!(split_constraint("app:"), ("app", None));
    }
}
