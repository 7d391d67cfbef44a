//! The JSON of Argo CD's API for what these Secrets hold (`Repository`, `RepoCreds`, `Cluster`):
//! read from requests, and written back without credentials, which the API never shows (Argo
//! CD's `Sanitized`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value, json};

use super::{ClusterConfig, ClusterSecret, RepoSecret, RepoSecretKind, SECRET_TYPE_LABEL};
use crate::application::REFRESH_ANNOTATION;

/// How a field is typed in the JSON; the Secret holds its text.
#[derive(Clone, Copy)]
enum Kind {
    Text,
    Flag,
    Number,
}

/// A field of `Repository` / `RepoCreds`, stored in the Secret under the same key.
struct Field {
    key: &'static str,
    kind: Kind,
    /// A credential: accepted, never shown.
    write_only: bool,
}

const fn field(key: &'static str, kind: Kind, write_only: bool) -> Field {
    Field {
        key,
        kind,
        write_only,
    }
}

/// Every field besides the URL, as Argo CD's `repositoryToSecret` stores them.
const REPO_FIELDS: &[Field] = &[
    field("name", Kind::Text, false),
    field("type", Kind::Text, false),
    field("project", Kind::Text, false),
    field("username", Kind::Text, false),
    field("password", Kind::Text, true),
    field("sshPrivateKey", Kind::Text, true),
    field("bearerToken", Kind::Text, true),
    field("tlsClientCertData", Kind::Text, true),
    field("tlsClientCertKey", Kind::Text, true),
    field("githubAppPrivateKey", Kind::Text, true),
    field("gcpServiceAccountKey", Kind::Text, true),
    field("githubAppID", Kind::Number, false),
    field("githubAppInstallationID", Kind::Number, false),
    field("githubAppEnterpriseBaseUrl", Kind::Text, false),
    field("proxy", Kind::Text, false),
    field("noProxy", Kind::Text, false),
    field("insecure", Kind::Flag, false),
    field("insecureIgnoreHostKey", Kind::Flag, false),
    field("enableLfs", Kind::Flag, false),
    field("enableOCI", Kind::Flag, false),
    field("insecureOCIForceHttp", Kind::Flag, false),
    field("forceHttpBasicAuth", Kind::Flag, false),
    field("useAzureWorkloadIdentity", Kind::Flag, false),
];

/// The repository types Argo CD knows.
const REPO_TYPES: [&str; 3] = ["git", "helm", "oci"];

impl RepoSecretKind {
    /// The JSON field holding the URL: `repo` in a `Repository`, `url` in a `RepoCreds`.
    pub fn url_field(self) -> &'static str {
        match self {
            Self::Repository => "repo",
            Self::RepoCreds => "url",
        }
    }
}

impl RepoSecret {
    /// An entry from Argo CD's `Repository` (or `RepoCreds`) JSON. Unset, empty, false and zero
    /// values are left out, as Argo CD leaves them out of the Secret. Errors name the field,
    /// never its value. The entry is one to read with; a write entry's JSON is the same, with
    /// `write` set.
    pub fn from_api(kind: RepoSecretKind, body: &Value) -> Result<Self, String> {
        let body = body.as_object().ok_or("expected a JSON object")?;
        let url_field = kind.url_field();
        let url = match body.get(url_field) {
            Some(Value::String(url)) if !url.trim().is_empty() => url.trim(),
            _ => return Err(format!("{url_field} is required")),
        };
        let mut data = BTreeMap::from([("url".to_string(), url.to_string())]);
        for field in REPO_FIELDS {
            let text = match (field.kind, body.get(field.key)) {
                (_, None | Some(Value::Null)) => continue,
                (Kind::Text, Some(Value::String(text))) => text.clone(),
                (Kind::Flag, Some(Value::Bool(flag))) => flag.to_string(),
                // A gRPC request's fields outside its REST body come as query parameters.
                (Kind::Flag, Some(Value::String(flag)))
                    if matches!(flag.as_str(), "true" | "false") =>
                {
                    flag.clone()
                }
                (Kind::Number, Some(Value::Number(n))) if n.is_i64() => n.to_string(),
                // grpc-gateway clients write 64-bit integers as strings.
                (Kind::Number, Some(Value::String(n))) if n.parse::<i64>().is_ok() => n.clone(),
                (kind, Some(_)) => {
                    let expected = match kind {
                        Kind::Text => "a string",
                        Kind::Flag => "true or false",
                        Kind::Number => "an integer",
                    };
                    return Err(format!("{} must be {expected}", field.key));
                }
            };
            if !matches!(text.as_str(), "" | "false" | "0") {
                data.insert(field.key.to_string(), text);
            }
        }
        // Through the Secret format, so an entry reads exactly as its stored Secret will.
        let secret = Secret {
            metadata: ObjectMeta {
                labels: Some(BTreeMap::from([(
                    SECRET_TYPE_LABEL.to_string(),
                    kind.label_value(false).to_string(),
                )])),
                ..Default::default()
            },
            string_data: Some(data),
            ..Default::default()
        };
        let repo = Self::from_secret(&secret)?;
        if !REPO_TYPES.contains(&repo.repo_type.as_str()) {
            return Err(format!("type must be one of {}", REPO_TYPES.join(", ")));
        }
        Ok(repo)
    }

    /// Argo CD's `Repository` (or `RepoCreds`) JSON of this entry, credentials included: the
    /// body that creates it through the API.
    pub fn to_api(&self) -> Value {
        self.api_json(|_| true)
    }

    /// Argo CD's `Repository` (or `RepoCreds`) JSON of this entry without its credentials.
    pub fn api_view(&self) -> Value {
        self.api_json(|field| !field.write_only)
    }

    fn api_json(&self, shown: impl Fn(&Field) -> bool) -> Value {
        let data = self.to_secret("").data.unwrap_or_default();
        let mut view = Map::new();
        view.insert(self.kind.url_field().into(), self.url.clone().into());
        for field in REPO_FIELDS.iter().filter(|field| shown(field)) {
            let Some(text) = data.get(field.key).map(|v| String::from_utf8_lossy(&v.0)) else {
                continue;
            };
            let value = match field.kind {
                Kind::Text => Value::from(text.as_ref()),
                Kind::Flag => Value::from(super::parse_flag(&text).unwrap_or(false)),
                Kind::Number => text
                    .parse::<i64>()
                    .map_or_else(|_| Value::from(text.as_ref()), Value::from),
            };
            view.insert(field.key.into(), value);
        }
        Value::Object(view)
    }
}

/// Argo CD's `Cluster` JSON, the fields ferry stores. The rest (`connectionState`, `info`,
/// `shard`...) is state the API reports, not settings.
#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", default)]
struct ApiCluster {
    #[serde(deserialize_with = "null_as_default")]
    server: String,
    #[serde(deserialize_with = "null_as_default")]
    name: String,
    #[serde(deserialize_with = "null_as_default")]
    config: ClusterConfig,
    #[serde(deserialize_with = "null_as_default")]
    namespaces: Vec<String>,
    cluster_resources: bool,
    #[serde(deserialize_with = "null_as_default")]
    project: String,
    #[serde(deserialize_with = "null_as_default")]
    labels: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_as_default")]
    annotations: BTreeMap<String, String>,
}

fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// `config` fields the API shows: nothing that authenticates (a token, password, key, or an
/// exec plugin's arguments and environment).
const SHOWN_CONFIG_FIELDS: [&str; 2] = ["awsAuthConfig", "disableCompression"];

impl ClusterSecret {
    /// A cluster from Argo CD's `Cluster` JSON. Errors name the field, never its value.
    pub fn from_api(body: &Value) -> Result<Self, String> {
        let cluster: ApiCluster = serde_path_to_error::deserialize(body).map_err(|err| {
            // serde's own message may quote the value, which may be a credential.
            format!("{} has the wrong type", err.path())
        })?;
        let server = cluster.server.trim().trim_end_matches('/');
        if !(server.starts_with("https://") || server.starts_with("http://")) {
            return Err("server must be an http(s) URL".into());
        }
        Ok(Self {
            name: cluster.name.trim().to_string(),
            server: server.to_string(),
            namespaces: cluster.namespaces,
            cluster_resources: cluster.cluster_resources,
            project: cluster.project,
            labels: cluster.labels,
            annotations: cluster.annotations,
            config: cluster.config,
        })
    }

    /// Argo CD's `Cluster` JSON of this cluster without its credentials.
    pub fn api_view(&self) -> Value {
        let tls = &self.config.tls_client_config;
        let mut config = json!({"tlsClientConfig": {"insecure": tls.insecure}});
        if let Some(server_name) = &tls.server_name {
            config["tlsClientConfig"]["serverName"] = server_name.clone().into();
        }
        for key in SHOWN_CONFIG_FIELDS {
            if let Some(value) = self.config.unknown.get(key) {
                config[key] = value.clone();
            }
        }
        let name = if self.name.is_empty() {
            &self.server
        } else {
            &self.name
        };
        let mut view = json!({"server": self.server, "name": name, "config": config});
        if !self.namespaces.is_empty() {
            view["namespaces"] = json!(self.namespaces);
        }
        if self.cluster_resources {
            view["clusterResources"] = true.into();
        }
        if !self.project.is_empty() {
            view["project"] = self.project.clone().into();
        }
        if !self.labels.is_empty() {
            view["labels"] = json!(self.labels);
        }
        if !self.annotations.is_empty() {
            view["annotations"] = json!(self.annotations);
        }
        // When a refresh of the controller's cache of the cluster was last asked for, as Argo
        // CD reads it from the same annotation.
        if let Some(at) = self.annotations.get(REFRESH_ANNOTATION) {
            view["refreshRequestedAt"] = at.clone().into();
        }
        view
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_come_from_argo_cds_json_and_go_back_without_credentials() {
        let body = json!({
            "repo": "https://git.example.com/apps.git",
            "name": "apps",
            "project": "team",
            "username": "alice",
            "password": "s3cret-pw",
            "tlsClientCertData": "CERT",
            "tlsClientCertKey": "CERT-KEY",
            "githubAppPrivateKey": "APP-KEY",
            "githubAppID": "42",
            "insecure": true,
            "enableLfs": false,
            "proxy": "",
            "connectionState": {"status": "Successful"},
        });
        let repo = RepoSecret::from_api(RepoSecretKind::Repository, &body).unwrap();
        assert_eq!(repo.url, "https://git.example.com/apps.git");
        assert_eq!(repo.repo_type, "git");
        assert_eq!(repo.password.as_deref(), Some("s3cret-pw"));
        assert!(repo.insecure);
        assert_eq!(
            repo.unknown.keys().collect::<Vec<_>>(),
            [
                "githubAppID",
                "githubAppPrivateKey",
                "tlsClientCertData",
                "tlsClientCertKey"
            ]
        );
        let view = repo.api_view();
        assert_eq!(
            view,
            json!({
                "repo": "https://git.example.com/apps.git",
                "type": "git",
                "name": "apps",
                "project": "team",
                "username": "alice",
                "insecure": true,
                "githubAppID": 42,
            })
        );
        // What the view shows reads back to the same entry, credentials aside.
        let shown = RepoSecret::from_api(RepoSecretKind::Repository, &view).unwrap();
        assert_eq!(shown.username, repo.username);
        assert!(shown.password.is_none() && shown.unknown.len() == 1);
        let request = repo.to_api();
        assert_eq!(request["tlsClientCertKey"], "CERT-KEY");
        assert_eq!(
            RepoSecret::from_api(RepoSecretKind::Repository, &request).unwrap(),
            repo
        );
    }

    #[test]
    fn repo_creds_use_url_and_bad_fields_are_named_without_their_value() {
        let creds = RepoSecret::from_api(
            RepoSecretKind::RepoCreds,
            &json!({"url": "https://git.example.com/", "sshPrivateKey": "KEY", "type": "helm"}),
        )
        .unwrap();
        assert_eq!(creds.kind, RepoSecretKind::RepoCreds);
        assert_eq!(
            creds.api_view(),
            json!({"url": "https://git.example.com/", "type": "helm"})
        );
        let err = |kind, body: Value| RepoSecret::from_api(kind, &body).unwrap_err();
        assert_eq!(
            err(RepoSecretKind::Repository, json!({"url": "https://x"})),
            "repo is required"
        );
        assert_eq!(
            err(
                RepoSecretKind::Repository,
                json!({"repo": "https://x", "password": 1234})
            ),
            "password must be a string"
        );
        assert_eq!(
            err(
                RepoSecretKind::Repository,
                json!({"repo": "https://x", "type": "svn"})
            ),
            "type must be one of git, helm, oci"
        );
        assert_eq!(
            err(RepoSecretKind::RepoCreds, json!("x")),
            "expected a JSON object"
        );
    }

    #[test]
    fn clusters_come_from_argo_cds_json_and_go_back_sanitized() {
        let body = json!({
            "server": "https://prod.example.com:6443/",
            "name": "prod",
            "namespaces": ["web"],
            "project": "team",
            "labels": {"env": "prod"},
            "config": {
                "bearerToken": "tok-123",
                "password": "pw-456",
                "tlsClientConfig": {"insecure": false, "caData": "Q0E=", "certData": "Q0VSVA==", "keyData": "S0VZ", "serverName": "api"},
                "execProviderConfig": {"command": "login", "args": ["--secret", "ARG-789"]},
                "awsAuthConfig": {"clusterName": "prod"},
            },
            "connectionState": {"status": "Successful"},
        });
        let cluster = ClusterSecret::from_api(&body).unwrap();
        assert_eq!(cluster.server, "https://prod.example.com:6443");
        assert_eq!(cluster.config.bearer_token.as_deref(), Some("tok-123"));
        assert_eq!(
            cluster.labels,
            BTreeMap::from([("env".to_string(), "prod".to_string())])
        );
        let view = cluster.api_view();
        assert_eq!(
            view,
            json!({
                "server": "https://prod.example.com:6443",
                "name": "prod",
                "namespaces": ["web"],
                "project": "team",
                "labels": {"env": "prod"},
                "config": {
                    "tlsClientConfig": {"insecure": false, "serverName": "api"},
                    "awsAuthConfig": {"clusterName": "prod"},
                },
            })
        );
        let in_cluster = ClusterSecret::in_cluster().api_view();
        assert_eq!(in_cluster["name"], "in-cluster");
    }

    #[test]
    fn bad_clusters_are_refused_without_quoting_values() {
        let err = ClusterSecret::from_api(
            &json!({"server": "https://x", "config": {"bearerToken": ["tok-123"]}}),
        )
        .unwrap_err();
        assert_eq!(err, "config.bearerToken has the wrong type");
        let err = ClusterSecret::from_api(&json!({"server": "prod", "name": "prod"})).unwrap_err();
        assert_eq!(err, "server must be an http(s) URL");
        let nulls = json!({"server": "https://x", "namespaces": null, "config": null});
        assert_eq!(
            ClusterSecret::from_api(&nulls).unwrap(),
            ClusterSecret {
                server: "https://x".into(),
                ..Default::default()
            }
        );
    }
}
