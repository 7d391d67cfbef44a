//! Argo CD's Secret formats for clusters, repositories and repository credential templates, as
//! typed data: the CLI writes them, the controller reads them, and Secrets written by Argo CD
//! itself (or by hand, declaratively) read the same way.
//!
//! Values are plain text here. On the wire a Secret carries them base64-encoded in `data`; a
//! Secret that was created with `stringData` and never read back from the API server carries them
//! in `stringData`, so both are read (`stringData` wins, as the API server would merge it).
//! `Debug` never shows passwords, tokens or keys.
//!
//! ferry-runtime's `secret_store` lists and writes these Secrets; [`RepoSecret::from_api`] and
//! [`ClusterSecret::from_api`] read Argo CD's API JSON for them, and their `api_view`s write it
//! without credentials.

mod api;

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::config::Kubeconfig;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

/// The key in `argocd-secret` the API server signs sessions with.
pub const SERVER_SECRET_KEY: &str = "server.secretkey";

/// The bearer token the API server shows the controller's view endpoints: derived from the
/// server's signing key (which both can read from `argocd-secret`), so no other secret needs
/// distributing and rotating the key rotates it too.
pub fn controller_view_token(server_secret_key: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let mut hash = Sha256::new();
    hash.update(b"ferry-controller-view\0");
    hash.update(server_secret_key);
    hex::encode(hash.finalize())
}

/// The label telling Argo CD what a Secret describes.
pub const SECRET_TYPE_LABEL: &str = "argocd.argoproj.io/secret-type";
pub const SECRET_TYPE_CLUSTER: &str = "cluster";
pub const SECRET_TYPE_REPOSITORY: &str = "repository";
pub const SECRET_TYPE_REPO_CREDS: &str = "repo-creds";
/// Argo CD's write repositories and their credential templates: credentials to push with (its
/// source hydrator commits rendered manifests with them), kept apart from those to read with.
pub const SECRET_TYPE_REPOSITORY_WRITE: &str = "repository-write";
pub const SECRET_TYPE_REPO_WRITE_CREDS: &str = "repo-write-creds";
/// The annotation Argo CD puts on the Secrets it writes.
pub const MANAGED_BY_ANNOTATION: &str = "managed-by";
pub const MANAGED_BY_ARGOCD: &str = "argocd.argoproj.io";

/// The cluster the control plane runs in, which Argo CD knows without a Secret.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
pub const IN_CLUSTER_NAME: &str = "in-cluster";
/// Annotations of a cluster Secret that are Argo CD's bookkeeping, not the cluster's: kubectl's
/// copy of the applied Secret (credentials included) and the managed-by mark.
const SYSTEM_ANNOTATIONS: [&str; 2] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    MANAGED_BY_ANNOTATION,
];

/// A destination cluster (`argocd.argoproj.io/secret-type: cluster`).
#[derive(Clone, Default, PartialEq)]
pub struct ClusterSecret {
    pub name: String,
    /// API server URL, without a trailing slash.
    pub server: String,
    /// Namespaces ferry may manage; empty means the whole cluster.
    pub namespaces: Vec<String>,
    /// With `namespaces` set: whether cluster-scoped resources may be managed too.
    pub cluster_resources: bool,
    /// The AppProject the cluster belongs to; empty for a cluster every project may use.
    pub project: String,
    /// The Secret's labels (but the secret-type label) and annotations (but Argo CD's own).
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub config: ClusterConfig,
}

/// The `config` key of a cluster Secret: Argo CD's JSON, field for field.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterConfig {
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub bearer_token: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub username: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub password: Option<String>,
    #[serde(default)]
    pub tls_client_config: TlsClientConfig,
    /// Fields ferry does not interpret (`execProviderConfig`, `awsAuthConfig`, ...), kept so they
    /// survive a round trip and can be reported.
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// `config.tlsClientConfig`. The certificate and key fields hold base64-encoded PEM, as Argo CD
/// stores them.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TlsClientConfig {
    /// Skip verifying the server's certificate.
    #[serde(default)]
    pub insecure: bool,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub server_name: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub ca_data: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub cert_data: Option<String>,
    #[serde(
        default,
        deserialize_with = "empty_as_none",
        skip_serializing_if = "Option::is_none"
    )]
    pub key_data: Option<String>,
    #[serde(flatten)]
    pub unknown: BTreeMap<String, Value>,
}

/// Which of the two repository Secret types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RepoSecretKind {
    /// One repository (`repository`).
    Repository,
    /// Credentials for every repository whose URL starts with `url` (`repo-creds`).
    RepoCreds,
}

impl RepoSecretKind {
    /// The value of the secret-type label, for credentials to read with or (`write`) to push
    /// with.
    pub fn label_value(self, write: bool) -> &'static str {
        match (self, write) {
            (Self::Repository, false) => SECRET_TYPE_REPOSITORY,
            (Self::RepoCreds, false) => SECRET_TYPE_REPO_CREDS,
            (Self::Repository, true) => SECRET_TYPE_REPOSITORY_WRITE,
            (Self::RepoCreds, true) => SECRET_TYPE_REPO_WRITE_CREDS,
        }
    }

    /// The kind and whether it is a write entry, from the secret-type label.
    fn of_label(value: &str) -> Option<(Self, bool)> {
        match value {
            SECRET_TYPE_REPOSITORY => Some((Self::Repository, false)),
            SECRET_TYPE_REPO_CREDS => Some((Self::RepoCreds, false)),
            SECRET_TYPE_REPOSITORY_WRITE => Some((Self::Repository, true)),
            SECRET_TYPE_REPO_WRITE_CREDS => Some((Self::RepoCreds, true)),
            _ => None,
        }
    }

    /// The prefix of the Secret names Argo CD generates.
    fn name_prefix(self, write: bool) -> &'static str {
        match (self, write) {
            (Self::Repository, false) => "repo",
            (Self::RepoCreds, false) => "creds",
            (Self::Repository, true) => "repo-write",
            (Self::RepoCreds, true) => "creds-write",
        }
    }
}

/// A repository or a credential template (`repository` / `repo-creds`).
#[derive(Clone, PartialEq)]
pub struct RepoSecret {
    pub kind: RepoSecretKind,
    /// A write entry (`repository-write` / `repo-write-creds`): credentials to push with, which
    /// are never used to read.
    pub write: bool,
    /// Repository URL, or URL prefix for a credential template.
    pub url: String,
    /// Display name.
    pub name: String,
    /// `git` or `helm`.
    pub repo_type: String,
    /// The AppProject the repository belongs to; empty for every project.
    pub project: String,
    pub username: Option<String>,
    pub password: Option<String>,
    pub ssh_private_key: Option<String>,
    /// Skip TLS (https) or host key (ssh) verification.
    pub insecure: bool,
    /// A Helm repository served from an OCI registry.
    pub enable_oci: bool,
    /// Keys without a field of their own (`githubAppPrivateKey`, `tlsClientCertData`, `proxy`,
    /// `insecureOCIForceHttp`, ...), kept so they survive a round trip and can be reported. Their
    /// values may be secret.
    pub unknown: BTreeMap<String, String>,
}

/// The key of a repository Secret that makes helm reach an OCI registry over plain HTTP.
const INSECURE_OCI_FORCE_HTTP: &str = "insecureOCIForceHttp";

/// The keys of a repository Secret ferry interprets.
const REPO_KEYS: [&str; 9] = [
    "url",
    "name",
    "type",
    "project",
    "username",
    "password",
    "sshPrivateKey",
    "insecure",
    "enableOCI",
];

impl RepoSecret {
    /// A repository (or, with [`RepoSecretKind::RepoCreds`], a template) without credentials.
    pub fn new(kind: RepoSecretKind, url: &str) -> Self {
        Self {
            kind,
            write: false,
            url: url.to_string(),
            name: String::new(),
            repo_type: "git".to_string(),
            project: String::new(),
            username: None,
            password: None,
            ssh_private_key: None,
            insecure: false,
            enable_oci: false,
            unknown: BTreeMap::new(),
        }
    }

    /// Whether an OCI registry is reached over plain HTTP (`insecureOCIForceHttp`, kept among
    /// the unknown keys so the Secret round-trips unchanged).
    pub fn insecure_oci_force_http(&self) -> bool {
        self.unknown
            .get(INSECURE_OCI_FORCE_HTTP)
            .is_some_and(|flag| parse_flag(flag.trim()) == Some(true))
    }

    /// Sets `insecureOCIForceHttp` (argocd's `--insecure-oci-force-http`); unset, the key is
    /// left out, as Argo CD leaves out false flags.
    pub fn set_insecure_oci_force_http(&mut self, on: bool) {
        if on {
            self.unknown
                .insert(INSECURE_OCI_FORCE_HTTP.to_string(), "true".to_string());
        } else {
            self.unknown.remove(INSECURE_OCI_FORCE_HTTP);
        }
    }

    /// Whether the entry authenticates by itself (Argo CD's `HasCredentials`): without, a
    /// repository inherits the credentials of a matching template. Listings show this instead
    /// of the credentials.
    pub fn has_credentials(&self) -> bool {
        const OTHER_CREDENTIALS: [&str; 4] = [
            "bearerToken",
            "tlsClientCertData",
            "githubAppPrivateKey",
            "gcpServiceAccountKey",
        ];
        self.username.is_some()
            || self.password.is_some()
            || self.ssh_private_key.is_some()
            || OTHER_CREDENTIALS
                .iter()
                .any(|key| self.unknown.contains_key(*key))
            || self
                .unknown
                .get("useAzureWorkloadIdentity")
                .is_some_and(|flag| parse_flag(flag) == Some(true))
    }

    /// Whether `other` is the same entry, which a new one replaces: same kind (read or write)
    /// and URL, and for repositories the same project.
    pub fn same_entry(&self, other: &RepoSecret) -> bool {
        self.kind == other.kind
            && self.write == other.write
            && self.url == other.url
            && (self.kind == RepoSecretKind::RepoCreds || self.project == other.project)
    }

    /// The name Argo CD gives such a Secret: `repo-<hash>` or `creds-<hash>` (`repo-write-`,
    /// `creds-write-` for write entries), the FNV-1a hash of URL and project.
    pub fn secret_name(&self) -> String {
        let hash = fnv1a32(&[self.url.as_bytes(), self.project.as_bytes()]);
        format!("{}-{hash}", self.kind.name_prefix(self.write))
    }

    /// The value of the Secret's secret-type label.
    pub fn secret_type(&self) -> &'static str {
        self.kind.label_value(self.write)
    }

    pub fn from_secret(secret: &Secret) -> Result<Self, String> {
        let data = SecretData::of(secret)?;
        let Some((kind, write)) = RepoSecretKind::of_label(&data.secret_type) else {
            return Err(format!(
                "Secret {}: {SECRET_TYPE_LABEL} is {:?}, not {SECRET_TYPE_REPOSITORY}, {SECRET_TYPE_REPO_CREDS}, {SECRET_TYPE_REPOSITORY_WRITE} or {SECRET_TYPE_REPO_WRITE_CREDS}",
                data.secret, data.secret_type
            ));
        };
        let url = data.text("url")?.unwrap_or_default();
        if url.is_empty() {
            return Err(format!("Secret {}: no url", data.secret));
        }
        let unknown = data
            .keys()
            .filter(|key| !REPO_KEYS.contains(key))
            .map(|key| Ok((key.to_string(), data.text(key)?.unwrap_or_default())))
            .collect::<Result<_, String>>()?;
        Ok(Self {
            kind,
            write,
            url,
            name: data.text("name")?.unwrap_or_default(),
            repo_type: data
                .text("type")?
                .filter(|t| !t.is_empty())
                .unwrap_or_else(|| "git".to_string()),
            project: data.text("project")?.unwrap_or_default(),
            username: data.text("username")?.filter(|v| !v.is_empty()),
            password: data.text("password")?.filter(|v| !v.is_empty()),
            ssh_private_key: data.text("sshPrivateKey")?.filter(|v| !v.is_empty()),
            insecure: data.flag("insecure")?,
            enable_oci: data.flag("enableOCI")?,
            unknown,
        })
    }

    /// The Secret as Argo CD writes it: named by [`Self::secret_name`], only non-empty values.
    pub fn to_secret(&self, namespace: &str) -> Secret {
        let mut data = BTreeMap::new();
        let mut put = |key: &str, value: &str| {
            if !value.is_empty() {
                data.insert(key.to_string(), ByteString(value.as_bytes().to_vec()));
            }
        };
        put("url", &self.url);
        put("name", &self.name);
        put("type", &self.repo_type);
        put("project", &self.project);
        put("username", self.username.as_deref().unwrap_or_default());
        put("password", self.password.as_deref().unwrap_or_default());
        put(
            "sshPrivateKey",
            self.ssh_private_key.as_deref().unwrap_or_default(),
        );
        put("insecure", if self.insecure { "true" } else { "" });
        put("enableOCI", if self.enable_oci { "true" } else { "" });
        for (key, value) in &self.unknown {
            put(key, value);
        }
        secret(&self.secret_name(), namespace, self.secret_type(), data)
    }
}

impl ClusterSecret {
    /// The registered cluster `dest` names (by name, else by server) among `clusters`, the
    /// implicit in-cluster entry included unless a Secret stands in for it.
    pub fn resolve<'c>(
        clusters: impl IntoIterator<Item = &'c ClusterSecret>,
        dest: &crate::application::ApplicationDestination,
    ) -> Result<ClusterSecret, String> {
        let server = dest.server.trim_end_matches('/');
        let found = clusters.into_iter().find(|cluster| {
            if dest.name.is_empty() {
                cluster.server == server
            } else {
                cluster.name == dest.name
            }
        });
        if let Some(cluster) = found {
            return Ok(cluster.clone());
        }
        if dest.name == IN_CLUSTER_NAME || (dest.name.is_empty() && server == IN_CLUSTER_SERVER) {
            return Ok(Self::in_cluster());
        }
        Err(match (dest.name.as_str(), server) {
            ("", "") => "the destination names no cluster (set a server or a name)".into(),
            ("", server) => format!("no cluster with server {server} is registered"),
            (name, _) => format!("no cluster named {name:?} is registered"),
        })
    }

    /// The implicit entry for the cluster the control plane runs in.
    pub fn in_cluster() -> Self {
        Self {
            name: IN_CLUSTER_NAME.to_string(),
            server: IN_CLUSTER_SERVER.to_string(),
            ..Default::default()
        }
    }

    /// The name Argo CD gives such a Secret: `cluster-<host>-<hash>`, the FNV-1a hash of the
    /// server URL.
    pub fn secret_name(&self) -> String {
        let authority = self
            .server
            .split_once("://")
            .map_or(self.server.as_str(), |(_, rest)| rest);
        let authority = authority.split('/').next().unwrap_or_default();
        let host = authority.rsplit('@').next().unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default().to_lowercase();
        let hash = fnv1a32(&[self.server.as_bytes()]);
        format!("cluster-{host}-{hash}")
    }

    pub fn from_secret(secret: &Secret) -> Result<Self, String> {
        let data = SecretData::of(secret)?;
        if data.secret_type != SECRET_TYPE_CLUSTER {
            return Err(format!(
                "Secret {}: {SECRET_TYPE_LABEL} is {:?}, not {SECRET_TYPE_CLUSTER}",
                data.secret, data.secret_type
            ));
        }
        let server = data.text("server")?.unwrap_or_default();
        let server = server.trim_end_matches('/').to_string();
        if server.is_empty() {
            return Err(format!("Secret {}: no server", data.secret));
        }
        let config = match data.text("config")? {
            Some(text) if !text.trim().is_empty() => serde_json::from_str(&text)
                // serde_json's message names the position only, never the value.
                .map_err(|e| format!("Secret {}: config is not valid: {e}", data.secret))?,
            _ => ClusterConfig::default(),
        };
        Ok(Self {
            name: data.text("name")?.unwrap_or_default(),
            server,
            namespaces: data
                .text("namespaces")?
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|ns| !ns.is_empty())
                .map(str::to_string)
                .collect(),
            cluster_resources: data.flag("clusterResources")?,
            project: data.text("project")?.unwrap_or_default(),
            labels: without(secret.metadata.labels.as_ref(), &[SECRET_TYPE_LABEL]),
            annotations: without(secret.metadata.annotations.as_ref(), &SYSTEM_ANNOTATIONS),
            config,
        })
    }

    /// The Secret as Argo CD writes it: named by [`Self::secret_name`]; the server URL stands in
    /// for an empty name.
    pub fn to_secret(&self, namespace: &str) -> Secret {
        let server = self.server.trim_end_matches('/');
        let mut data = BTreeMap::new();
        let mut put = |key: &str, value: String| {
            data.insert(key.to_string(), ByteString(value.into_bytes()));
        };
        put("server", server.to_string());
        put(
            "name",
            if self.name.is_empty() {
                server.to_string()
            } else {
                self.name.clone()
            },
        );
        if !self.namespaces.is_empty() {
            put("namespaces", self.namespaces.join(","));
        }
        if self.cluster_resources {
            put("clusterResources", "true".to_string());
        }
        if !self.project.is_empty() {
            put("project", self.project.clone());
        }
        put(
            "config",
            serde_json::to_string(&self.config).expect("cluster config serializes to JSON"),
        );
        let mut secret = secret(&self.secret_name(), namespace, SECRET_TYPE_CLUSTER, data);
        let metadata = &mut secret.metadata;
        for (target, extra) in [
            (&mut metadata.labels, &self.labels),
            (&mut metadata.annotations, &self.annotations),
        ] {
            let target = target.get_or_insert_default();
            for (key, value) in extra {
                // Argo CD's own entries win.
                target.entry(key.clone()).or_insert_with(|| value.clone());
            }
        }
        secret
    }

    /// A kubeconfig with one context (named after the cluster) that connects to it. Refused when
    /// the config needs something ferry cannot do yet (an exec provider, AWS or GCP auth), so a
    /// client never silently connects without the intended credentials.
    pub fn to_kubeconfig(&self) -> Result<Kubeconfig, String> {
        let unsupported: Vec<&str> = self
            .config
            .unknown
            .iter()
            .chain(&self.config.tls_client_config.unknown)
            .filter(|(_, value)| !is_empty_value(value))
            .map(|(key, _)| key.as_str())
            .collect();
        if !unsupported.is_empty() {
            return Err(format!(
                "cluster {} ({}): config uses {} which ferry does not support",
                self.name,
                self.server,
                unsupported.join(", ")
            ));
        }
        let tls = &self.config.tls_client_config;
        let name = if self.name.is_empty() {
            &self.server
        } else {
            &self.name
        };
        let mut cluster = json!({"server": self.server});
        let mut user = json!({});
        let set = |target: &mut Value, key: &str, value: &Option<String>| {
            if let Some(value) = value {
                target[key] = json!(value);
            }
        };
        set(&mut cluster, "certificate-authority-data", &tls.ca_data);
        set(&mut cluster, "tls-server-name", &tls.server_name);
        set(&mut user, "client-certificate-data", &tls.cert_data);
        set(&mut user, "client-key-data", &tls.key_data);
        set(&mut user, "token", &self.config.bearer_token);
        set(&mut user, "username", &self.config.username);
        set(&mut user, "password", &self.config.password);
        if tls.insecure {
            cluster["insecure-skip-tls-verify"] = json!(true);
        }
        serde_json::from_value(json!({
            "clusters": [{"name": name, "cluster": cluster}],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "current-context": name,
        }))
        .map_err(|e| {
            format!(
                "cluster {} ({}): cannot build a kubeconfig: {e}",
                self.name, self.server
            )
        })
    }
}

/// Whether an unknown config field is unset in effect (Go writes zero values, e.g.
/// `"disableCompression": false`).
fn is_empty_value(value: &Value) -> bool {
    match value {
        Value::Null | Value::Bool(false) => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::Number(_) | Value::Bool(true) => false,
    }
}

fn secret(
    name: &str,
    namespace: &str,
    secret_type: &str,
    data: BTreeMap<String, ByteString>,
) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                SECRET_TYPE_LABEL.to_string(),
                secret_type.to_string(),
            )])),
            annotations: Some(BTreeMap::from([(
                MANAGED_BY_ANNOTATION.to_string(),
                MANAGED_BY_ARGOCD.to_string(),
            )])),
            ..Default::default()
        },
        data: Some(data),
        type_: Some("Opaque".to_string()),
        ..Default::default()
    }
}

/// The values of a Secret, `data` and `stringData` together.
struct SecretData<'a> {
    secret: String,
    secret_type: String,
    data: Option<&'a BTreeMap<String, ByteString>>,
    string_data: Option<&'a BTreeMap<String, String>>,
}

impl<'a> SecretData<'a> {
    fn of(secret: &'a Secret) -> Result<Self, String> {
        let name = secret.metadata.name.clone().unwrap_or_default();
        let secret_type = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|labels| labels.get(SECRET_TYPE_LABEL))
            .ok_or_else(|| format!("Secret {name}: no {SECRET_TYPE_LABEL} label"))?;
        Ok(Self {
            secret_type: secret_type.clone(),
            secret: name,
            data: secret.data.as_ref(),
            string_data: secret.string_data.as_ref(),
        })
    }

    fn keys(&self) -> impl Iterator<Item = &str> {
        let mut keys: Vec<&str> = self
            .data
            .into_iter()
            .flat_map(|d| d.keys())
            .chain(self.string_data.into_iter().flat_map(|d| d.keys()))
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys.into_iter()
    }

    /// A value as text; errors name the key, never the value.
    fn text(&self, key: &str) -> Result<Option<String>, String> {
        if let Some(value) = self.string_data.and_then(|d| d.get(key)) {
            return Ok(Some(value.clone()));
        }
        match self.data.and_then(|d| d.get(key)) {
            None => Ok(None),
            Some(bytes) => String::from_utf8(bytes.0.clone())
                .map(Some)
                .map_err(|_| format!("Secret {}: {key} is not UTF-8 text", self.secret)),
        }
    }

    /// A boolean the way Go's `strconv.ParseBool` reads it; absent or empty is false.
    fn flag(&self, key: &str) -> Result<bool, String> {
        match self.text(key)?.as_deref().map(str::trim) {
            None | Some("") => Ok(false),
            Some(text) => parse_flag(text).ok_or_else(|| {
                format!(
                    "Secret {}: {key} is {text:?}, not true or false",
                    self.secret
                )
            }),
        }
    }
}

/// Go's `strconv.ParseBool`.
fn parse_flag(text: &str) -> Option<bool> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

/// A copy of `map` without these keys.
fn without(map: Option<&BTreeMap<String, String>>, keys: &[&str]) -> BTreeMap<String, String> {
    map.into_iter()
        .flatten()
        .filter(|(key, _)| !keys.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect()
}

fn empty_as_none<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.filter(|s| !s.is_empty()))
}

/// 32-bit FNV-1a over the parts in order (Go's `hash/fnv` `New32a`).
fn fnv1a32(parts: &[&[u8]]) -> u32 {
    let mut hash: u32 = 0x811c_9dc5;
    for byte in parts.iter().flat_map(|p| p.iter()) {
        hash ^= u32::from(*byte);
        hash = hash.wrapping_mul(0x0100_0193);
    }
    hash
}

/// `Some(<redacted>)` / `None`: whether a secret value is there, never the value.
fn redacted<T>(value: &Option<T>) -> Option<&'static str> {
    value.as_ref().map(|_| "<redacted>")
}

impl fmt::Debug for ClusterSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterSecret")
            .field("name", &self.name)
            .field("server", &self.server)
            .field("namespaces", &self.namespaces)
            .field("cluster_resources", &self.cluster_resources)
            .field("project", &self.project)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations.keys().collect::<Vec<_>>())
            .field("config", &self.config)
            .finish()
    }
}

impl fmt::Debug for ClusterConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterConfig")
            .field("bearer_token", &redacted(&self.bearer_token))
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("tls_client_config", &self.tls_client_config)
            .field("unknown", &self.unknown.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for TlsClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let present = |value: &Option<String>| value.as_ref().map(|_| "<present>");
        f.debug_struct("TlsClientConfig")
            .field("insecure", &self.insecure)
            .field("server_name", &self.server_name)
            .field("ca_data", &present(&self.ca_data))
            .field("cert_data", &present(&self.cert_data))
            .field("key_data", &redacted(&self.key_data))
            .field("unknown", &self.unknown.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for RepoSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RepoSecret")
            .field("kind", &self.kind)
            .field("write", &self.write)
            .field("url", &self.url)
            .field("name", &self.name)
            .field("repo_type", &self.repo_type)
            .field("project", &self.project)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("ssh_private_key", &redacted(&self.ssh_private_key))
            .field("insecure", &self.insecure)
            .field("enable_oci", &self.enable_oci)
            .field("unknown", &self.unknown.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret_yaml(yaml: &str) -> Secret {
        serde_yaml::from_str(yaml).unwrap()
    }

    fn text(secret: &Secret, key: &str) -> String {
        String::from_utf8(secret.data.as_ref().unwrap()[key].0.clone()).unwrap()
    }

    fn repo() -> RepoSecret {
        RepoSecret {
            name: "apps".into(),
            project: "team".into(),
            username: Some("alice".into()),
            password: Some("s3cret-pw".into()),
            insecure: true,
            ..RepoSecret::new(
                RepoSecretKind::Repository,
                "https://git.example.com/apps.git",
            )
        }
    }

    #[test]
    fn repository_round_trips_through_data() {
        let secret = repo().to_secret("argocd");
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[SECRET_TYPE_LABEL],
            "repository"
        );
        assert_eq!(
            secret.metadata.annotations.as_ref().unwrap()[MANAGED_BY_ANNOTATION],
            MANAGED_BY_ARGOCD
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("argocd"));
        let keys: Vec<&String> = secret.data.as_ref().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "insecure", "name", "password", "project", "type", "url", "username"
            ]
        );
        assert_eq!(text(&secret, "insecure"), "true");
        assert_eq!(RepoSecret::from_secret(&secret).unwrap(), repo());
        // Through the wire format (base64 `data`) too.
        let json = serde_json::to_value(&secret).unwrap();
        let back: Secret = serde_json::from_value(json).unwrap();
        assert_eq!(RepoSecret::from_secret(&back).unwrap(), repo());
    }

    #[test]
    fn declarative_repository_with_string_data_reads_like_argo_cd() {
        let secret = secret_yaml(
            "metadata:\n  name: private-repo\n  labels: {argocd.argoproj.io/secret-type: repository}\n\
             stringData:\n  url: git@github.com:org/repo.git\n  sshPrivateKey: KEY\n  insecure: \"True\"\n  githubAppID: \"42\"\n\
             data:\n  enableOCI: dHJ1ZQ==\n",
        );
        let repo = RepoSecret::from_secret(&secret).unwrap();
        assert_eq!(repo.kind, RepoSecretKind::Repository);
        assert_eq!(repo.url, "git@github.com:org/repo.git");
        assert_eq!(repo.repo_type, "git");
        assert_eq!(repo.ssh_private_key.as_deref(), Some("KEY"));
        assert!(repo.insecure && repo.enable_oci && repo.has_credentials());
        assert_eq!(
            repo.unknown,
            BTreeMap::from([("githubAppID".to_string(), "42".to_string())])
        );
    }

    #[test]
    fn oci_helm_repository_reads_like_argo_cd() {
        let secret = secret_yaml(
            r#"
metadata:
  name: charts
  labels: {argocd.argoproj.io/secret-type: repository}
stringData:
  url: 127.0.0.1:5000/charts
  type: helm
  enableOCI: "true"
  insecureOCIForceHttp: "true"
  username: bot
  password: s3cret
"#,
        );
        let repo = RepoSecret::from_secret(&secret).unwrap();
        assert_eq!(repo.url, "127.0.0.1:5000/charts");
        assert_eq!(repo.repo_type, "helm");
        assert!(repo.enable_oci && repo.insecure_oci_force_http());
        assert_eq!(
            RepoSecret::from_secret(&repo.to_secret("argocd")).unwrap(),
            repo
        );
        let mut plain = RepoSecret::new(RepoSecretKind::Repository, "r");
        assert!(!plain.insecure_oci_force_http());
        plain.set_insecure_oci_force_http(true);
        assert_eq!(plain.unknown["insecureOCIForceHttp"], "true");
        plain.set_insecure_oci_force_http(false);
        assert!(plain.unknown.is_empty());
    }

    #[test]
    fn entries_are_the_same_by_url_and_project() {
        let a = RepoSecret::new(RepoSecretKind::Repository, "https://r");
        let scoped = RepoSecret {
            project: "team".into(),
            ..a.clone()
        };
        assert!(a.same_entry(&a.clone()));
        assert!(!a.same_entry(&scoped));
        assert!(!a.same_entry(&RepoSecret::new(RepoSecretKind::RepoCreds, "https://r")));
    }

    #[test]
    fn credentials_are_any_of_argo_cds() {
        let none = RepoSecret::new(RepoSecretKind::Repository, "https://r");
        assert!(!none.has_credentials());
        for (key, value) in [
            ("githubAppPrivateKey", "K"),
            ("useAzureWorkloadIdentity", "true"),
        ] {
            let mut repo = none.clone();
            repo.unknown.insert(key.into(), value.into());
            assert!(repo.has_credentials(), "{key}");
        }
    }

    #[test]
    fn repo_creds_are_named_and_labelled_apart() {
        let creds = RepoSecret {
            username: Some("bot".into()),
            ..RepoSecret::new(RepoSecretKind::RepoCreds, "https://git.example.com/")
        };
        let secret = creds.to_secret("argocd");
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[SECRET_TYPE_LABEL],
            "repo-creds"
        );
        assert!(
            secret
                .metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("creds-")
        );
        assert_eq!(RepoSecret::from_secret(&secret).unwrap(), creds);
    }

    #[test]
    fn write_entries_are_labelled_and_named_apart_as_argo_cds() {
        let url = "https://github.com/argoproj/argocd-example-apps";
        let write = RepoSecret {
            write: true,
            password: Some("push-token".into()),
            ..RepoSecret::new(RepoSecretKind::Repository, url)
        };
        let secret = write.to_secret("argocd");
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[SECRET_TYPE_LABEL],
            "repository-write"
        );
        // Argo CD's RepoURLToSecretName("repo-write", url, ""): the read entry's hash.
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("repo-write-1686952910")
        );
        assert_eq!(RepoSecret::from_secret(&secret).unwrap(), write);
        let read = RepoSecret::new(RepoSecretKind::Repository, url);
        assert!(!write.same_entry(&read) && !read.same_entry(&write));
        let template = RepoSecret {
            write: true,
            ..RepoSecret::new(RepoSecretKind::RepoCreds, "https://github.com/")
        };
        let secret = template.to_secret("argocd");
        assert_eq!(
            secret.metadata.labels.as_ref().unwrap()[SECRET_TYPE_LABEL],
            "repo-write-creds"
        );
        assert!(
            secret
                .metadata
                .name
                .as_deref()
                .unwrap()
                .starts_with("creds-write-")
        );
        assert_eq!(RepoSecret::from_secret(&secret).unwrap(), template);
    }

    #[test]
    fn secret_names_are_argo_cds() {
        // Values computed with Go's hash/fnv, as Argo CD's RepoURLToSecretName and
        // URIToSecretName do.
        let repo = RepoSecret::new(
            RepoSecretKind::Repository,
            "https://github.com/argoproj/argocd-example-apps",
        );
        assert_eq!(repo.secret_name(), "repo-1686952910");
        let scoped = RepoSecret {
            project: "team".into(),
            ..repo
        };
        assert_eq!(scoped.secret_name(), "repo-3911658023");
        let cluster = ClusterSecret {
            server: "https://Prod.Example.com:6443".into(),
            ..Default::default()
        };
        assert_eq!(cluster.secret_name(), "cluster-prod.example.com-4280386857");
    }

    #[test]
    fn malformed_repository_secrets_are_refused_by_name() {
        let err = RepoSecret::from_secret(&secret_yaml(
            "metadata: {name: r, labels: {argocd.argoproj.io/secret-type: cluster}}\nstringData: {url: x}",
        ))
        .unwrap_err();
        assert!(
            err.contains("Secret r") && err.contains("\"cluster\""),
            "{err}"
        );
        let err = RepoSecret::from_secret(&secret_yaml(
            "metadata: {name: r, labels: {argocd.argoproj.io/secret-type: repository}}\nstringData: {url: x, insecure: maybe}",
        ))
        .unwrap_err();
        assert_eq!(err, "Secret r: insecure is \"maybe\", not true or false");
        let err =
            RepoSecret::from_secret(&secret_yaml("metadata: {name: r}\nstringData: {url: x}"))
                .unwrap_err();
        assert_eq!(err, "Secret r: no argocd.argoproj.io/secret-type label");
    }

    fn cluster() -> ClusterSecret {
        ClusterSecret {
            name: "prod".into(),
            server: "https://10.0.0.1:6443".into(),
            namespaces: vec!["web".into(), "jobs".into()],
            cluster_resources: true,
            project: "team".into(),
            labels: BTreeMap::from([("env".into(), "prod".into())]),
            annotations: BTreeMap::from([("owner".into(), "platform".into())]),
            config: ClusterConfig {
                bearer_token: Some("tok-123".into()),
                tls_client_config: TlsClientConfig {
                    ca_data: Some("Q0E=".into()),
                    key_data: Some("S0VZ".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
        }
    }

    #[test]
    fn cluster_round_trips_and_config_is_argo_cds_json() {
        let secret = cluster().to_secret("argocd");
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("cluster-10.0.0.1-2537316535")
        );
        assert_eq!(text(&secret, "namespaces"), "web,jobs");
        assert_eq!(text(&secret, "clusterResources"), "true");
        let config: Value = serde_json::from_str(&text(&secret, "config")).unwrap();
        assert_eq!(
            config,
            json!({"bearerToken": "tok-123",
                   "tlsClientConfig": {"insecure": false, "caData": "Q0E=", "keyData": "S0VZ"}})
        );
        assert_eq!(ClusterSecret::from_secret(&secret).unwrap(), cluster());
    }

    #[test]
    fn cluster_labels_and_annotations_are_the_secrets_but_argo_cds_own() {
        let secret = cluster().to_secret("argocd");
        let meta = &secret.metadata;
        assert_eq!(
            meta.labels.as_ref().unwrap().keys().collect::<Vec<_>>(),
            [SECRET_TYPE_LABEL, "env"]
        );
        assert_eq!(
            meta.annotations
                .as_ref()
                .unwrap()
                .keys()
                .collect::<Vec<_>>(),
            [MANAGED_BY_ANNOTATION, "owner"]
        );
        let mut applied = secret.clone();
        applied.metadata.annotations.as_mut().unwrap().insert(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{\"stringData\": {\"config\": \"tok-123\"}}".into(),
        );
        assert_eq!(ClusterSecret::from_secret(&applied).unwrap(), cluster());
    }

    #[test]
    fn cluster_config_keeps_fields_ferry_does_not_interpret() {
        let secret = secret_yaml(
            r#"
metadata: {name: eks, labels: {argocd.argoproj.io/secret-type: cluster}}
stringData:
  name: eks
  server: https://eks.example.com/
  config: |
    {"awsAuthConfig": {"clusterName": "prod"}, "bearerToken": "",
     "tlsClientConfig": {"insecure": true}}
"#,
        );
        let cluster = ClusterSecret::from_secret(&secret).unwrap();
        assert_eq!(cluster.server, "https://eks.example.com");
        assert_eq!(cluster.config.bearer_token, None);
        assert!(cluster.config.tls_client_config.insecure);
        assert_eq!(
            cluster.config.unknown.keys().collect::<Vec<_>>(),
            ["awsAuthConfig"]
        );
        let err = cluster.to_kubeconfig().unwrap_err();
        assert_eq!(
            err,
            "cluster eks (https://eks.example.com): config uses awsAuthConfig which ferry does not support"
        );
        let back = ClusterSecret::from_secret(&cluster.to_secret("argocd")).unwrap();
        assert_eq!(back, cluster);
    }

    #[test]
    fn cluster_becomes_a_kubeconfig() {
        let kubeconfig = cluster().to_kubeconfig().unwrap();
        assert_eq!(kubeconfig.current_context.as_deref(), Some("prod"));
        let c = kubeconfig.clusters[0].cluster.as_ref().unwrap();
        assert_eq!(c.server.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(c.certificate_authority_data.as_deref(), Some("Q0E="));
        let user = kubeconfig.auth_infos[0].auth_info.as_ref().unwrap();
        assert!(user.token.is_some() && user.client_key_data.is_some());
        assert_eq!(user.client_certificate_data, None);
    }

    #[test]
    fn debug_never_shows_secret_values() {
        let shown = format!("{:?} {:?}", repo(), cluster());
        for secret in ["s3cret-pw", "tok-123", "S0VZ"] {
            assert!(!shown.contains(secret), "{secret} leaked: {shown}");
        }
        assert!(
            shown.contains("alice") && shown.contains("<redacted>"),
            "{shown}"
        );
    }

    #[test]
    fn in_cluster_is_argo_cds_implicit_entry() {
        let c = ClusterSecret::in_cluster();
        assert_eq!(
            (c.name.as_str(), c.server.as_str()),
            (IN_CLUSTER_NAME, IN_CLUSTER_SERVER)
        );
    }
}
