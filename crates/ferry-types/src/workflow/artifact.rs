//! Artifacts: files a template reads (`inputs.artifacts`) or leaves (`outputs.artifacts`), and
//! the artifact repository they are kept in (`artifactRepositoryRef`, the
//! `artifact-repositories` ConfigMap). Upstream's field names.

use serde::{Deserialize, Serialize};

use crate::source::UnknownFields;

/// The ConfigMap a workflow's artifact repository is read from when `artifactRepositoryRef`
/// names none.
pub const REPOSITORIES_CONFIG_MAP: &str = "artifact-repositories";
/// On that ConfigMap: the key of the repository to use when `artifactRepositoryRef` names none.
pub const DEFAULT_REPOSITORY_ANNOTATION: &str = "workflows.argoproj.io/default-artifact-repository";
/// Upstream's default `keyFormat`: output artifacts go under `<this>/<file name>`.
pub const DEFAULT_KEY_FORMAT: &str = "{{workflow.name}}/{{pod.name}}";

/// One artifact of `inputs`, `outputs` or `arguments`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Artifact {
    pub name: String,
    /// Where the file or directory is in the main container.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Another node's output artifact, e.g. `{{steps.gen.outputs.artifacts.out}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// How an output is packed: `tar` (gzip, the default) or `none`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive: Option<ArchiveStrategy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Artifact>,
    /// Content given inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<RawArtifact>,
    /// A Git repository cloned at a revision.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitArtifact>,
    /// A missing optional artifact is skipped instead of failing the node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub optional: Option<bool>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl Artifact {
    /// Whether it says where its content comes from.
    pub fn has_location(&self) -> bool {
        self.s3.is_some() || self.raw.is_some() || self.git.is_some()
    }

    /// Whether an output is uploaded as written rather than as a tar.gz archive.
    pub fn archive_none(&self) -> bool {
        self.archive.as_ref().is_some_and(|a| a.none.is_some())
    }
}

/// `archive`: `{none: {}}` or `{tar: {...}}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArchiveStrategy {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub none: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tar: Option<serde_json::Value>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `s3` of an artifact or an artifact repository. An artifact needs only `key`; the rest, when
/// unset, is the workflow's repository's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct S3Artifact {
    /// `host:port`, without a scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Plain HTTP instead of HTTPS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub insecure: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_key_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Of a repository: where output artifacts go, before their file name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_format: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

impl S3Artifact {
    /// This one's fields, the repository's where this one has none.
    pub fn over(&self, repository: &S3Artifact) -> S3Artifact {
        S3Artifact {
            endpoint: self.endpoint.clone().or(repository.endpoint.clone()),
            bucket: self.bucket.clone().or(repository.bucket.clone()),
            region: self.region.clone().or(repository.region.clone()),
            insecure: self.insecure.or(repository.insecure),
            access_key_secret: (self.access_key_secret.clone())
                .or(repository.access_key_secret.clone()),
            secret_key_secret: (self.secret_key_secret.clone())
                .or(repository.secret_key_secret.clone()),
            key: self.key.clone().or(repository.key.clone()),
            key_format: None,
            unknown: UnknownFields::default(),
        }
    }
}

/// A key of a Secret in the workflow's namespace.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretKeySelector {
    pub name: String,
    pub key: String,
}

/// `raw`
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RawArtifact {
    pub data: String,
}

/// `git`: cloned into the artifact's path.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GitArtifact {
    pub repo: String,
    /// A branch, tag or commit; the remote's HEAD when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// A shallow clone of this many commits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub depth: Option<u32>,
    /// More refspecs fetched after the clone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fetch: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_secret: Option<SecretKeySelector>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_private_key_secret: Option<SecretKeySelector>,
    /// Accept any ssh host key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_ignore_host_key: bool,
    /// Accept any TLS server certificate.
    #[serde(
        default,
        rename = "insecureSkipTLS",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub insecure_skip_tls: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disable_submodules: bool,
    /// Fetch `branch` alone.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub single_branch: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// One entry of the `artifact-repositories` ConfigMap (YAML), or the repository a workflow's
/// status keeps.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRepository {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Artifact>,
    #[serde(flatten)]
    pub unknown: UnknownFields,
}

/// `spec.artifactRepositoryRef`: a key of a ConfigMap of the workflow's namespace.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRepositoryRef {
    /// `artifact-repositories` when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    /// The ConfigMap's default-artifact-repository annotation's when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// `status.artifactRepositoryRef`: the repository the workflow's artifacts went to, as it was
/// read when the workflow started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ArtifactRepositoryRefStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_map: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_repository: Option<ArtifactRepository>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_configmap_entry_reads() {
        let repository: ArtifactRepository = serde_yaml::from_str(
            "s3:
  bucket: my-bucket
  endpoint: minio:9000
  insecure: true
  keyFormat: 'my/{{workflow.name}}'
  accessKeySecret: {name: my-minio-cred, key: accesskey}
  secretKeySecret: {name: my-minio-cred, key: secretkey}
",
        )
        .unwrap();
        let s3 = repository.s3.unwrap();
        assert_eq!(s3.endpoint.as_deref(), Some("minio:9000"));
        assert_eq!(s3.insecure, Some(true));
        assert_eq!(s3.access_key_secret.unwrap().key, "accesskey");
        assert_eq!(s3.key_format.as_deref(), Some("my/{{workflow.name}}"));
    }

    #[test]
    fn an_artifacts_own_s3_fields_win_over_the_repositorys() {
        let repository = S3Artifact {
            endpoint: Some("minio:9000".into()),
            bucket: Some("repo".into()),
            insecure: Some(true),
            key_format: Some("x".into()),
            ..S3Artifact::default()
        };
        let own = S3Artifact {
            bucket: Some("mine".into()),
            key: Some("a/b.tgz".into()),
            ..S3Artifact::default()
        };
        let merged = own.over(&repository);
        assert_eq!(merged.endpoint.as_deref(), Some("minio:9000"));
        assert_eq!(merged.bucket.as_deref(), Some("mine"));
        assert_eq!(merged.key.as_deref(), Some("a/b.tgz"));
        assert_eq!(merged.key_format, None);
    }

    #[test]
    fn archive_none_is_read() {
        let artifact: Artifact =
            serde_yaml::from_str("{name: out, path: /tmp/out, archive: {none: {}}}").unwrap();
        assert!(artifact.archive_none());
        assert!(!artifact.has_location());
    }
}
