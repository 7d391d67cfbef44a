//! Argo CD Image Updater's `argocd-image-updater.argoproj.io/v1alpha1` `ImageUpdater` (its 1.x
//! configuration form): which Applications of the resource's namespace to update (by name
//! pattern and labels) and how (images, update settings, write-back), at three levels — the
//! spec, each application reference, each image — the more specific one winning.
//!
//! Field names are upstream's exactly. Settings are `Option`s because "not set here" (inherit)
//! differs from a value; fields ferry does not know are kept (`unknown` maps).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, ObjectMeta, Time};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::source::UnknownFields;

pub const GROUP: &str = "argocd-image-updater.argoproj.io";
pub const API_VERSION: &str = "argocd-image-updater.argoproj.io/v1alpha1";

/// An Argo CD Image Updater `ImageUpdater`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(try_from = "ImageUpdaterRepr")]
pub struct ImageUpdater {
    pub metadata: ObjectMeta,
    pub spec: ImageUpdaterSpec,
    pub status: Option<ImageUpdaterStatus>,
    pub unknown: UnknownFields,
}

/// `spec`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdaterSpec {
    /// Defaults for every application and image of this resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_update_settings: Option<CommonUpdateSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back_config: Option<WriteBackConfig>,
    #[serde(default)]
    pub application_refs: Vec<ApplicationRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_verification: Option<ImagesVerification>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.applicationRefs[]`: the Applications whose name matches the glob `namePattern` (and
/// `labelSelectors`), with overrides of the spec's settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationRef {
    pub name_pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label_selectors: Option<LabelSelector>,
    /// Read the images from the Application's `argocd-image-updater.argoproj.io/*` annotations;
    /// only the selection fields of this reference count then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub use_annotations: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_verification: Option<ImagesVerification>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_update_settings: Option<CommonUpdateSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back_config: Option<WriteBackConfig>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageConfig>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `gitConfig`: where a `git` write-back commits.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitConfig {
    /// The repository to commit to; the Application's source repository when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// `branch` or `base:target` (target may hold a template).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `kustomization:<path>` or `helmvalues:<path>`; `.argocd-source-<app>.yaml` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_back_target: Option<String>,
    /// Open a pull request instead of pushing (`github` / `gitlab`, `labels`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<Value>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `images[]`: one image to track.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageConfig {
    pub alias: String,
    /// The image, with an optional version constraint (semver) or tag (digest) after `:`.
    pub image_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_update_settings: Option<CommonUpdateSettings>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub manifest_targets: Option<ManifestTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub images_verification: Option<ImagesVerification>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `commonUpdateSettings`: how new tags are chosen.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommonUpdateSettings {
    /// `semver` (default), `newest-build` (`latest`), `alphabetical` (`name`) or `digest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub update_strategy: Option<String>,
    /// Update even when the image is not among the Application's live images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_update: Option<bool>,
    /// `regexp:<expression>` or `any`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_tags: Option<String>,
    /// Glob patterns of tags never considered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_tags: Option<Vec<String>>,
    /// `pullsecret:<ns>/<name>`, `secret:<ns>/<name>#<field>`, `env:<VAR>` or `ext:<script>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_secret: Option<String>,
    /// `os/arch[/variant]`s an image must be built for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platforms: Option<Vec<String>>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `writeBackConfig`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteBackConfig {
    /// `argocd` (default), `git`, `git:secret:<ns>/<name>` or `git:repocreds`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_config: Option<GitConfig>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `manifestTargets`: at most one of `helm`, `kustomize`, `plugin`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ManifestTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeTarget>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<PluginTarget>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `manifestTargets.helm`: the Helm parameter names (dot paths) the image goes to.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    /// One parameter for the whole `name:tag`; `name` and `tag` are ignored then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `manifestTargets.kustomize`: the image's name in the kustomization's `images`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeTarget {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `manifestTargets.plugin`: environment variable names of a config management plugin.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `imagesVerification`: cosign signature checks before an update.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImagesVerification {
    /// True when absent (the block's presence turns verification on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cosign_key: Option<SecretRef>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl ImagesVerification {
    pub fn is_enabled(&self) -> bool {
        self.enabled.unwrap_or(true)
    }
}

/// A key of a Secret in the ImageUpdater's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    pub secret_name: String,
    pub key: String,
}

/// `status`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImageUpdaterStatus {
    #[serde(default, skip_serializing_if = "crate::object::is_zero")]
    pub observed_generation: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_checked_at: Option<Time>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_updated_at: Option<Time>,
    #[serde(default)]
    pub applications_matched: i32,
    #[serde(default)]
    pub images_managed: i32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recent_updates: Vec<RecentUpdate>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

/// `status.recentUpdates[]`: one image updated in the last cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecentUpdate {
    pub alias: String,
    pub image: String,
    pub new_version: String,
    pub applications_updated: i32,
    pub updated_at: Time,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

impl kube::Resource for ImageUpdater {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "ImageUpdater".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        GROUP.into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        crate::object::VERSION.into()
    }
    fn api_version(_: &()) -> std::borrow::Cow<'_, str> {
        API_VERSION.into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "imageupdaters".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// The wire form: `apiVersion` and `kind` are checked on the way in and written on the way out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageUpdaterRepr {
    api_version: Option<String>,
    kind: Option<String>,
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default)]
    spec: ImageUpdaterSpec,
    #[serde(default)]
    status: Option<ImageUpdaterStatus>,
    #[serde(flatten)]
    unknown: UnknownFields,
}

impl TryFrom<ImageUpdaterRepr> for ImageUpdater {
    type Error = String;

    fn try_from(repr: ImageUpdaterRepr) -> Result<Self, String> {
        if let Some(found) = repr.api_version.as_deref().filter(|v| *v != API_VERSION) {
            return Err(format!(
                "expected apiVersion {API_VERSION} for an ImageUpdater, found {found:?}"
            ));
        }
        if let Some(found) = repr.kind.as_deref().filter(|k| *k != "ImageUpdater") {
            return Err(format!("expected kind ImageUpdater, found {found:?}"));
        }
        Ok(Self {
            metadata: repr.metadata,
            spec: repr.spec,
            status: repr.status,
            unknown: repr.unknown,
        })
    }
}

impl Serialize for ImageUpdater {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        #[serde(rename_all = "camelCase")]
        struct Out<'a> {
            api_version: &'a str,
            kind: &'a str,
            metadata: &'a ObjectMeta,
            spec: &'a ImageUpdaterSpec,
            #[serde(skip_serializing_if = "Option::is_none")]
            status: &'a Option<ImageUpdaterStatus>,
            #[serde(flatten)]
            unknown: &'a UnknownFields,
        }
        Out {
            api_version: API_VERSION,
            kind: "ImageUpdater",
            metadata: &self.metadata,
            spec: &self.spec,
            status: &self.status,
            unknown: &self.unknown,
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upstream's documented example with every level of settings.
    #[test]
    fn upstream_example_reads_and_round_trips() {
        let yaml = r#"apiVersion: argocd-image-updater.argoproj.io/v1alpha1
kind: ImageUpdater
metadata:
  name: my-image-updater
  namespace: argocd
spec:
  commonUpdateSettings:
    updateStrategy: semver
  writeBackConfig:
    method: "git:secret:argocd/git-creds"
    gitConfig:
      branch: "main:image-updater{{.SHA256}}"
      writeBackTarget: "helmvalues:./helm/values.yaml"
  imagesVerification:
    cosignKey:
      secretName: org-cosign-pubkey
      key: cosign.pub
  applicationRefs:
    - namePattern: "my-app-*"
      labelSelectors:
        matchLabels:
          env: prod
      images:
        - alias: nginx
          imageName: "nginx:~1.26"
          commonUpdateSettings:
            allowTags: "regexp:^[0-9.]+$"
            ignoreTags: ["latest", "dev*"]
            platforms: ["linux/amd64"]
            forceUpdate: true
          manifestTargets:
            helm:
              name: nginx.image.repository
              tag: nginx.image.tag
          imagesVerification:
            enabled: false
    - namePattern: "legacy-*"
      useAnnotations: true
"#;
        let iu: ImageUpdater = serde_yaml::from_str(yaml).unwrap();
        let refs = &iu.spec.application_refs;
        assert_eq!(refs.len(), 2);
        let nginx = &refs[0].images[0];
        assert_eq!(nginx.image_name, "nginx:~1.26");
        let settings = nginx.common_update_settings.as_ref().unwrap();
        assert_eq!(settings.ignore_tags.as_deref().unwrap(), ["latest", "dev*"]);
        assert_eq!(settings.force_update, Some(true));
        let helm = nginx.manifest_targets.as_ref().unwrap().helm.as_ref();
        assert_eq!(helm.unwrap().tag.as_deref(), Some("nginx.image.tag"));
        assert!(!nginx.images_verification.as_ref().unwrap().is_enabled());
        assert!(iu.spec.images_verification.as_ref().unwrap().is_enabled());
        assert_eq!(refs[1].use_annotations, Some(true));
        let git = iu.spec.write_back_config.as_ref().unwrap();
        assert_eq!(
            git.git_config
                .as_ref()
                .unwrap()
                .write_back_target
                .as_deref(),
            Some("helmvalues:./helm/values.yaml")
        );
        assert!(iu.unknown.is_empty() && iu.spec.unknown.is_empty());

        let written = serde_json::to_value(&iu).unwrap();
        let original: Value = serde_yaml::from_str(yaml).unwrap();
        assert_eq!(written, original);
    }

    #[test]
    fn another_kind_is_refused() {
        let err = serde_yaml::from_str::<ImageUpdater>(
            "apiVersion: argoproj.io/v1alpha1\nkind: Application\nspec: {}",
        )
        .unwrap_err();
        assert!(err.to_string().contains("expected apiVersion"), "{err}");
    }
}
