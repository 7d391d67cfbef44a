//! What the `scmProvider` and `pullRequest` generators share: the controller's SCM settings
//! (`--enable-scm-providers`, `--allowed-scm-providers`, `--scm-root-ca-path`,
//! `--token-ref-strict-mode`), tokens read from Secrets, a paginating JSON client of a
//! provider's REST API, and the refusal of provider fields ferry lacks.
//!
//! A token is only ever put into a request header marked sensitive; no message names its value.

use std::path::PathBuf;

use ferry_types::application_set::SecretRef;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LINK};
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;

use super::{GeneratorError, Kube};

/// The label a Secret needs in strict mode (Argo CD's `scm-creds` secret type).
const SCM_CREDS_LABEL: (&str, &str) = ("argocd.argoproj.io/secret-type", "scm-creds");

/// Most pages one listing follows, so a provider that keeps answering `next` cannot hold a
/// reconcile forever.
const MAX_PAGES: usize = 1000;

/// The controller's settings for SCM providers.
#[derive(Debug, Clone)]
pub struct ScmSettings {
    /// Whether the SCM and pull request generators may call providers at all.
    pub enabled: bool,
    /// The API URLs generators may name (empty: any). Generators without a custom URL
    /// (github.com, gitlab.com) are always allowed, as in Argo CD.
    pub allowed_providers: Vec<String>,
    /// PEM certificates trusted besides the system's, for self-hosted providers.
    pub root_ca_path: Option<PathBuf>,
    /// Read tokens only from Secrets labelled `argocd.argoproj.io/secret-type: scm-creds`.
    pub token_ref_strict_mode: bool,
}

impl Default for ScmSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            allowed_providers: Vec::new(),
            root_ca_path: None,
            token_ref_strict_mode: false,
        }
    }
}

impl ScmSettings {
    /// Refuses a generator when SCM providers are disabled or its API URL is not allowed.
    pub fn check(&self, api_url: &str) -> Result<(), GeneratorError> {
        if !self.enabled {
            return Err(GeneratorError::new("scm providers are disabled"));
        }
        if api_url.is_empty()
            || self.allowed_providers.is_empty()
            || self.allowed_providers.iter().any(|a| a == api_url)
        {
            return Ok(());
        }
        Err(GeneratorError::new(format!(
            "scm provider not allowed: scm provider {api_url:?} not allowed, must use one of the following: {}",
            self.allowed_providers.join(", ")
        )))
    }

    /// A client trusting `--scm-root-ca-path` besides the system's certificates, or anything
    /// when the generator says `insecure`.
    pub(crate) fn http_client(&self, insecure: bool) -> Result<reqwest::Client, GeneratorError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!(
                "ferry-appset-controller/",
                env!("CARGO_PKG_VERSION")
            ))
            .timeout(std::time::Duration::from_secs(60))
            .danger_accept_invalid_certs(insecure);
        if let Some(path) = &self.root_ca_path {
            let pem = std::fs::read(path).map_err(|e| {
                GeneratorError::new(format!("reading SCM root CA {}: {e}", path.display()))
            })?;
            for cert in reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| GeneratorError::new(format!("SCM root CA {}: {e}", path.display())))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        builder
            .build()
            .map_err(|e| GeneratorError::new(format!("building the SCM HTTP client: {e}")))
    }
}

/// The value of `token_ref` in the Secret of the ApplicationSet's namespace; empty without a
/// reference (anonymous requests), as Argo CD reads it.
pub(crate) async fn token(
    token_ref: Option<&SecretRef>,
    kube: Option<&Kube>,
    namespace: &str,
    strict: bool,
) -> Result<String, GeneratorError> {
    let Some(token_ref) = token_ref else {
        return Ok(String::new());
    };
    let name = &token_ref.secret_name;
    let kube = kube.ok_or_else(|| {
        GeneratorError::new(format!(
            "error fetching secret {namespace}/{name}: no Kubernetes client"
        ))
    })?;
    let secrets: Api<Secret> = Api::namespaced(kube.client.clone(), namespace);
    let secret = secrets.get(name).await.map_err(|e| {
        GeneratorError::new(format!("error fetching secret {namespace}/{name}: {e}"))
    })?;
    if strict {
        let (label, value) = SCM_CREDS_LABEL;
        let labelled = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(label))
            .is_some_and(|v| v == value);
        if !labelled {
            return Err(GeneratorError::new(format!(
                "secret {namespace}/{name} is not a valid SCM creds secret: secret must have label {label:?}={value:?}"
            )));
        }
    }
    let data = secret.data.unwrap_or_default();
    let bytes = data.get(&token_ref.key).ok_or_else(|| {
        GeneratorError::new(format!(
            "key {:?} in secret {namespace}/{name} not found",
            token_ref.key
        ))
    })?;
    String::from_utf8(bytes.0.clone()).map_err(|_| {
        GeneratorError::new(format!(
            "key {:?} in secret {namespace}/{name} is not UTF-8",
            token_ref.key
        ))
    })
}

/// A provider's REST API under `base` (ending in `/`), with its authentication header.
pub(crate) struct RestApi {
    http: reqwest::Client,
    base: Url,
    headers: HeaderMap,
}

/// A failed call: the HTTP status when the provider answered one.
#[derive(Debug)]
pub(crate) struct CallError {
    pub status: Option<StatusCode>,
    pub message: String,
}

impl CallError {
    pub fn not_found(&self) -> bool {
        self.status == Some(StatusCode::NOT_FOUND)
    }
}

impl From<CallError> for GeneratorError {
    fn from(err: CallError) -> Self {
        GeneratorError::new(err.message)
    }
}

impl RestApi {
    /// `auth` is the header name and value carrying the token, unset for an empty token.
    pub fn new(
        http: reqwest::Client,
        base: &str,
        auth: Option<(&'static str, String)>,
    ) -> Result<Self, GeneratorError> {
        let mut base = Url::parse(base)
            .map_err(|e| GeneratorError::new(format!("invalid SCM API URL {base:?}: {e}")))?;
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            reqwest::header::ACCEPT,
            HeaderValue::from_static("application/json"),
        );
        if let Some((name, token)) = auth {
            let mut value = HeaderValue::from_str(&token).map_err(|_| {
                GeneratorError::new("the SCM token holds characters no HTTP header may")
            })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(Self {
            http,
            base,
            headers,
        })
    }

    pub fn with_header(mut self, name: &'static str, value: &'static str) -> Self {
        self.headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
        self
    }

    /// `path` (relative to the base, already escaped) with `query`.
    pub fn url(&self, path: &str, query: &[(&str, &str)]) -> Result<Url, CallError> {
        let mut url = self.base.join(path).map_err(|e| CallError {
            status: None,
            message: format!("invalid SCM API path {path:?}: {e}"),
        })?;
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        Ok(url)
    }

    /// GETs `url` and decodes its JSON body.
    pub async fn get<T: DeserializeOwned>(&self, url: Url) -> Result<T, CallError> {
        Ok(self.fetch(url).await?.0)
    }

    /// GETs `url` and every page its `Link: <…>; rel="next"` headers lead to.
    pub async fn get_all<T: DeserializeOwned>(&self, url: Url) -> Result<Vec<T>, CallError> {
        let mut out = Vec::new();
        let mut next = Some(url);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            if pages > MAX_PAGES {
                return Err(CallError {
                    status: None,
                    message: format!("{} answered more than {MAX_PAGES} pages", self.base),
                });
            }
            let (items, headers): (Vec<T>, _) = self.fetch(url).await?;
            out.extend(items);
            // Only pages of the same API: the token must not go anywhere else.
            next = next_link(&headers).filter(|n| n.origin() == self.base.origin());
        }
        Ok(out)
    }

    async fn fetch<T: DeserializeOwned>(&self, url: Url) -> Result<(T, HeaderMap), CallError> {
        let shown = url.to_string();
        let response = self
            .http
            .get(url)
            .headers(self.headers.clone())
            .send()
            .await
            .map_err(|e| CallError {
                status: None,
                message: format!("GET {shown}: {}", without_url(&e)),
            })?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.bytes().await.map_err(|e| CallError {
            status: Some(status),
            message: format!("GET {shown}: {}", without_url(&e)),
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(CallError {
                status: Some(status),
                message: format!("GET {shown}: {status}: {}", text.trim()),
            });
        }
        let value = serde_json::from_slice(&body).map_err(|e| CallError {
            status: Some(status),
            message: format!("GET {shown}: unexpected answer: {e}"),
        })?;
        Ok((value, headers))
    }
}

fn without_url(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    if let Some(url) = err.url() {
        text = text.replace(&format!(" ({url})"), "");
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// The `rel="next"` target of RFC 8288 `Link` headers, as GitHub, GitLab and Gitea send them.
fn next_link(headers: &HeaderMap) -> Option<Url> {
    headers
        .get_all(LINK)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| Url::parse(target).ok()).flatten()
        })
}

/// A path segment with `/` and everything else outside the unreserved set escaped.
pub(crate) fn segment(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// A repository path with each segment escaped but the `/` between them kept.
pub(crate) fn path_segments(path: &str) -> String {
    path.split('/').map(segment).collect::<Vec<_>>().join("/")
}

/// The first `n` characters of a SHA (all of it when shorter).
pub(crate) fn short(sha: &str, n: usize) -> String {
    sha.chars().take(n).collect()
}

/// A filter's optional regular expression, compiled; `kind` names the field in the error, as
/// upstream's message does.
pub fn filter_regex(
    kind: &str,
    text: &Option<String>,
) -> Result<Option<regex::Regex>, GeneratorError> {
    text.as_deref()
        .map(|t| {
            regex::Regex::new(t).map_err(|e| {
                GeneratorError::new(format!("error compiling {kind} regexp {t:?}: {e}"))
            })
        })
        .transpose()
}

/// A field ferry does not implement (e.g. GitHub App credentials, a CA ConfigMap) is refused
/// rather than ignored: ignoring it would call the provider differently than asked.
/// `provider` names it, e.g. "github pull request provider".
pub fn refuse_unknown(
    provider: &str,
    unknown: &ferry_types::source::UnknownFields,
) -> Result<(), GeneratorError> {
    match unknown.keys().next() {
        Some(field) => Err(GeneratorError::new(format!(
            "the field {field} of the {provider} is not supported by ferry"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_providers_restrict_custom_api_urls_only() {
        let settings = ScmSettings {
            allowed_providers: vec!["https://git.example.com/".into()],
            ..ScmSettings::default()
        };
        assert!(settings.check("https://git.example.com/").is_ok());
        assert!(settings.check("").is_ok());
        let err = settings.check("https://evil.example.com/").unwrap_err();
        assert_eq!(
            err.to_string(),
            "scm provider not allowed: scm provider \"https://evil.example.com/\" not allowed, must use one of the following: https://git.example.com/"
        );
        assert!(ScmSettings::default().check("https://any/").is_ok());
        let disabled = ScmSettings {
            enabled: false,
            ..ScmSettings::default()
        };
        assert_eq!(
            disabled.check("").unwrap_err().to_string(),
            "scm providers are disabled"
        );
    }

    #[test]
    fn next_links_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static(
                "<https://h/api?page=3>; rel=\"last\", <https://h/api?page=2>; rel=\"next\"",
            ),
        );
        assert_eq!(
            next_link(&headers).unwrap().as_str(),
            "https://h/api?page=2"
        );
        headers.insert(
            LINK,
            HeaderValue::from_static("<https://h/x>; rel=\"prev\""),
        );
        assert_eq!(next_link(&headers), None);
    }

    #[test]
    fn paths_are_escaped_per_segment() {
        assert_eq!(path_segments("a b/c#d"), "a%20b/c%23d");
        assert_eq!(segment("group/sub"), "group%2Fsub");
    }
}
