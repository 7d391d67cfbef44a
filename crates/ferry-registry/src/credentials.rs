//! Credential sources as Argo CD Image Updater spells them, and the credentials they yield.
//! Values are never logged: [`Credentials`] prints its password as `***`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use base64::Engine;
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::Secret;

use crate::error::{Error, ErrorKind, Result};

/// The key of a `kubernetes.io/dockerconfigjson` Secret.
const PULL_SECRET_FIELD: &str = ".dockerconfigjson";
/// How long an `ext:` script may run (upstream's limit).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A user name and password (or token) for a registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

impl Credentials {
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }

    /// `user:password`, as `secret:`, `env:` and `ext:` give them.
    fn from_pair(pair: &str, what: impl fmt::Display) -> Result<Self> {
        match pair.trim_end_matches(['\r', '\n']).split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Credentials::new(user, password))
            }
            _ => Err(Error::new(
                ErrorKind::Credentials,
                format!("{what} is not of the form <username>:<password>"),
            )),
        }
    }
}

/// Where credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// `pullsecret:<namespace>/<name>`: the entry for the registry's host in a
    /// `.dockerconfigjson` Secret.
    PullSecret { namespace: String, name: String },
    /// `secret:<namespace>/<name>#<field>`: `user:password` in a Secret's field.
    Secret {
        namespace: String,
        name: String,
        field: String,
    },
    /// `env:<VAR>`: `user:password` in an environment variable.
    Env(String),
    /// `ext:<absolute path>`: a script printing `user:password`.
    Ext(PathBuf),
}

impl FromStr for CredentialSource {
    type Err = Error;

    fn from_str(spec: &str) -> Result<Self> {
        let invalid = || {
            Error::new(
                ErrorKind::Config,
                format!(
                    "invalid credential source {spec:?} (pullsecret:<ns>/<name>, secret:<ns>/<name>#<field>, env:<VAR>, ext:<path>)"
                ),
            )
        };
        let (kind, rest) = spec.split_once(':').ok_or_else(invalid)?;
        if rest.is_empty() {
            return Err(invalid());
        }
        let namespaced = |text: &str| match text.split_once('/') {
            Some((ns, name)) if !ns.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok((ns.to_string(), name.to_string()))
            }
            _ => Err(invalid()),
        };
        match kind.to_ascii_lowercase().as_str() {
            "pullsecret" => {
                let (namespace, name) = namespaced(rest)?;
                Ok(CredentialSource::PullSecret { namespace, name })
            }
            "secret" => {
                let (secret, field) = rest.split_once('#').ok_or_else(invalid)?;
                let (namespace, name) = namespaced(secret)?;
                if field.is_empty() || field.contains('#') {
                    return Err(invalid());
                }
                Ok(CredentialSource::Secret {
                    namespace,
                    name,
                    field: field.to_string(),
                })
            }
            "env" => Ok(CredentialSource::Env(rest.to_string())),
            "ext" => Ok(CredentialSource::Ext(PathBuf::from(rest))),
            _ => Err(invalid()),
        }
    }
}

/// Reads a Secret's data; implemented for [`kube::Client`].
pub trait SecretReader: Send + Sync {
    fn secret_data<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Vec<u8>>>>;
}

impl SecretReader for kube::Client {
    fn secret_data<'a>(
        &'a self,
        namespace: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<BTreeMap<String, Vec<u8>>>> {
        Box::pin(async move {
            let api: kube::Api<Secret> = kube::Api::namespaced(self.clone(), namespace);
            let secret = api.get(name).await.map_err(|e| {
                Error::new(
                    ErrorKind::Credentials,
                    format!("reading Secret {namespace}/{name}: {e}"),
                )
            })?;
            Ok(secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(k, v)| (k, v.0))
                .collect())
        })
    }
}

impl CredentialSource {
    /// Reads the credentials; a pull secret's entry is the one for any of `registry_hosts`
    /// (`host[:port]`).
    pub async fn fetch(
        &self,
        registry_hosts: &[&str],
        secrets: Option<&dyn SecretReader>,
    ) -> Result<Credentials> {
        match self {
            CredentialSource::Env(var) => {
                let value = std::env::var(var).map_err(|_| {
                    Error::new(
                        ErrorKind::Credentials,
                        format!("environment variable {var} is not set"),
                    )
                })?;
                Credentials::from_pair(&value, format_args!("environment variable {var}"))
            }
            CredentialSource::Secret {
                namespace,
                name,
                field,
            } => {
                let value = secret_field(secrets, namespace, name, field).await?;
                Credentials::from_pair(
                    &value,
                    format_args!("field {field} of Secret {namespace}/{name}"),
                )
            }
            CredentialSource::PullSecret { namespace, name } => {
                let value = secret_field(secrets, namespace, name, PULL_SECRET_FIELD).await?;
                docker_config_entry(&value, registry_hosts).map_err(|message| {
                    Error::new(
                        ErrorKind::Credentials,
                        format!("pull secret {namespace}/{name}: {message}"),
                    )
                })
            }
            CredentialSource::Ext(script) => run_script(script).await,
        }
    }
}

async fn secret_field(
    secrets: Option<&dyn SecretReader>,
    namespace: &str,
    name: &str,
    field: &str,
) -> Result<String> {
    let secrets = secrets.ok_or_else(|| {
        Error::new(
            ErrorKind::Credentials,
            format!("Secret {namespace}/{name} cannot be read: no Kubernetes client given"),
        )
    })?;
    let data = secrets.secret_data(namespace, name).await?;
    let value = data.get(field).ok_or_else(|| {
        Error::new(
            ErrorKind::Credentials,
            format!("Secret {namespace}/{name} has no field {field}"),
        )
    })?;
    String::from_utf8(value.clone()).map_err(|_| {
        Error::new(
            ErrorKind::Credentials,
            format!("field {field} of Secret {namespace}/{name} is not UTF-8"),
        )
    })
}

/// The credentials for `registry_host` in a docker config (`{"auths": {"<host>": {"auth":
/// base64(user:password)}}}`, or `username`/`password`); keys may carry a scheme and a path
/// (`https://index.docker.io/v1/`), matched by prefix as upstream does.
fn docker_config_entry(json: &str, registry_hosts: &[&str]) -> Result<Credentials, String> {
    #[derive(serde::Deserialize)]
    struct Config {
        auths: Option<BTreeMap<String, Entry>>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let config: Config =
        serde_json::from_str(json).map_err(|e| format!("invalid .dockerconfigjson: {e}"))?;
    let auths = config.auths.ok_or("no auths in .dockerconfigjson")?;
    let bare = |key: &str| {
        let key = key
            .strip_prefix("https://")
            .or_else(|| key.strip_prefix("http://"))
            .unwrap_or(key);
        key.split('/').next().unwrap_or_default().to_string()
    };
    let (key, entry) = auths
        .iter()
        .find(|(key, _)| registry_hosts.contains(&bare(key).as_str()))
        .ok_or_else(|| format!("no entry for {}", registry_hosts.join(" or ")))?;
    if let (Some(user), Some(password)) = (&entry.username, &entry.password) {
        return Ok(Credentials::new(user, password));
    }
    let auth = entry
        .auth
        .as_deref()
        .ok_or_else(|| format!("entry {key} has neither auth nor username/password"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth.trim())
        .map_err(|_| format!("auth of entry {key} is not base64"))?;
    let pair =
        String::from_utf8(decoded).map_err(|_| format!("auth of entry {key} is not UTF-8"))?;
    Credentials::from_pair(&pair, format_args!("auth of entry {key}")).map_err(|e| e.to_string())
}

async fn run_script(script: &std::path::Path) -> Result<Credentials> {
    let fail = |message: String| Error::new(ErrorKind::Credentials, message);
    if !script.is_absolute() {
        return Err(fail(format!(
            "credential script path must be absolute, got {}",
            script.display()
        )));
    }
    let mut command = tokio::process::Command::new(script);
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(SCRIPT_TIMEOUT, command.output())
        .await
        .map_err(|_| {
            fail(format!(
                "credential script {} did not finish within {}s",
                script.display(),
                SCRIPT_TIMEOUT.as_secs()
            ))
        })?
        .map_err(|e| {
            fail(format!(
                "running credential script {}: {e}",
                script.display()
            ))
        })?;
    if !output.status.success() {
        // stderr may be shown: the script's output (stdout) holds the secret, its errors don't.
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(fail(format!(
            "credential script {} failed ({}): {}",
            script.display(),
            output.status,
            stderr.trim()
        )));
    }
    let stdout = String::from_utf8(output.stdout).map_err(|_| {
        fail(format!(
            "credential script {} printed non-UTF-8",
            script.display()
        ))
    })?;
    Credentials::from_pair(
        stdout.trim(),
        format_args!("the output of credential script {}", script.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_upstream_specs() {
        assert_eq!(
            "pullsecret:argocd/regcred"
                .parse::<CredentialSource>()
                .unwrap(),
            CredentialSource::PullSecret {
                namespace: "argocd".into(),
                name: "regcred".into()
            }
        );
        assert_eq!(
            "secret:foo/bar#creds".parse::<CredentialSource>().unwrap(),
            CredentialSource::Secret {
                namespace: "foo".into(),
                name: "bar".into(),
                field: "creds".into()
            }
        );
        assert_eq!(
            "env:REGISTRY_SECRET".parse::<CredentialSource>().unwrap(),
            CredentialSource::Env("REGISTRY_SECRET".into())
        );
        assert_eq!(
            "ext:/app/auth/auth.sh".parse::<CredentialSource>().unwrap(),
            CredentialSource::Ext("/app/auth/auth.sh".into())
        );
        for bad in [
            "pullsecret:nons",
            "secret:foo/bar",
            "secret:foo/bar#",
            "vault:x",
            "env:",
            "plain",
        ] {
            let err = bad.parse::<CredentialSource>().unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{bad}");
        }
    }

    #[test]
    fn picks_the_pull_secret_entry_of_the_host() {
        let auth = base64::engine::general_purpose::STANDARD.encode("alice:s3cret:with-colon");
        let json = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "eDp5"}},
                 "harbor.example:5000": {{"auth": "{auth}"}},
                 "ghcr.io": {{"username": "bob", "password": "tok"}}}}}}"#
        );
        let harbor = docker_config_entry(&json, &["harbor.example:5000"]).unwrap();
        assert_eq!(harbor, Credentials::new("alice", "s3cret:with-colon"));
        assert_eq!(
            docker_config_entry(&json, &["ghcr.io"]).unwrap(),
            Credentials::new("bob", "tok")
        );
        assert_eq!(
            docker_config_entry(&json, &["registry-1.docker.io", "index.docker.io"]).unwrap(),
            Credentials::new("x", "y")
        );
        assert!(
            docker_config_entry(&json, &["quay.io"])
                .unwrap_err()
                .contains("no entry for quay.io")
        );
    }

    #[test]
    fn never_prints_the_password() {
        let printed = format!("{:?}", Credentials::new("alice", "s3cret"));
        assert!(!printed.contains("s3cret"), "{printed}");
    }

    #[tokio::test]
    async fn runs_a_script_and_reports_its_failure() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.sh");
        let bad = dir.path().join("bad.sh");
        std::fs::write(&good, "#!/bin/sh\necho 'robot:t0ken'\n").unwrap();
        std::fs::write(&bad, "#!/bin/sh\necho 'no aws session' >&2\nexit 3\n").unwrap();
        for script in [&good, &bad] {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(script, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let creds = CredentialSource::Ext(good)
            .fetch(&["r"], None)
            .await
            .unwrap();
        assert_eq!(creds, Credentials::new("robot", "t0ken"));
        let err = CredentialSource::Ext(bad)
            .fetch(&["r"], None)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Credentials);
        assert!(err.to_string().contains("no aws session"), "{err}");
        let err = CredentialSource::Ext("relative.sh".into())
            .fetch(&["r"], None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("absolute"), "{err}");
    }

    #[tokio::test]
    async fn secrets_need_a_client() {
        let source: CredentialSource = "secret:ns/name#creds".parse().unwrap();
        let err = source.fetch(&["r"], None).await.unwrap_err();
        assert!(err.to_string().contains("no Kubernetes client"), "{err}");
    }
}
