//! What `argocd-cm` says about single sign-on: the server's external `url` and the `oidc.config`
//! YAML, whose `clientID` and `clientSecret` may name a Secret's value instead of holding it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use url::Url;

/// The `argocd-cm` key holding the server's external URL (`https://argocd.example.com`).
pub const URL_KEY: &str = "url";
/// The `argocd-cm` key holding the external provider's settings, as YAML.
pub const OIDC_CONFIG_KEY: &str = "oidc.config";
/// The scopes asked for when `requestedScopes` names none (Argo CD's defaults).
pub const DEFAULT_SCOPES: &[&str] = &["openid", "profile", "email", "groups"];
/// The path the provider sends the browser back to, under `url`.
pub const CALLBACK_PATH: &str = "/auth/callback";
/// Only Secrets with this label are looked up by `$<secret>:<key>`, as in Argo CD.
pub const PART_OF_LABEL: &str = "app.kubernetes.io/part-of=argocd";

/// The data of the Secrets labelled [`PART_OF_LABEL`], by Secret name.
pub type LabelledSecrets = BTreeMap<String, BTreeMap<String, Vec<u8>>>;

/// One entry of `requestedIDTokenClaims`, sent as the `claims` request parameter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdTokenClaim {
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// `oidc.config` with its references resolved. Debug output never shows the client secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcConfig {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    client_secret: Option<String>,
    /// The client the CLI logs in as (`cliClientID`); tokens for it are accepted too.
    pub cli_client_id: Option<String>,
    pub requested_scopes: Vec<String>,
    pub requested_id_token_claims: BTreeMap<String, IdTokenClaim>,
    /// PEM certificates to trust the provider with, besides the public roots.
    pub root_ca: Option<String>,
    /// Where to send the browser on logout; `{{token}}` and `{{logoutRedirectURL}}` are filled in.
    pub logout_url: Option<String>,
}

impl OidcConfig {
    pub fn client_secret(&self) -> Option<&str> {
        self.client_secret.as_deref()
    }

    /// The client IDs a token may be for to be a session here: the web and the CLI client.
    pub fn audiences(&self) -> Vec<&str> {
        std::iter::once(self.client_id.as_str())
            .chain(self.cli_client_id.as_deref())
            .collect()
    }
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("name", &self.name)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("cli_client_id", &self.cli_client_id)
            .field("requested_scopes", &self.requested_scopes)
            .field("requested_id_token_claims", &self.requested_id_token_claims)
            .field("root_ca", &self.root_ca.as_ref().map(|_| "<PEM>"))
            .field("logout_url", &self.logout_url)
            .finish()
    }
}

/// `oidc.config` as written; keys ferry does not use (Argo CD's `enablePKCEAuthentication`,
/// `domainHint`, ...) are ignored, so a config written for Argo CD still loads. PKCE is always
/// on.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    name: String,
    #[serde(default)]
    issuer: String,
    #[serde(rename = "clientID", default)]
    client_id: String,
    #[serde(default)]
    client_secret: String,
    #[serde(rename = "cliClientID", default)]
    cli_client_id: String,
    #[serde(default)]
    requested_scopes: Vec<String>,
    #[serde(rename = "requestedIDTokenClaims", default)]
    requested_id_token_claims: BTreeMap<String, Option<IdTokenClaim>>,
    #[serde(rename = "rootCA", default)]
    root_ca: String,
    #[serde(rename = "logoutURL", default)]
    logout_url: String,
}

/// Single sign-on settings: `url` and `oidc.config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SsoSettings {
    /// The server's external URL.
    pub url: Option<Url>,
    /// None when SSO is not configured.
    pub oidc: Option<Arc<OidcConfig>>,
}

impl SsoSettings {
    /// Reads `url` and `oidc.config` from `argocd-cm`, resolving `$<key>` in `argocd-secret` and
    /// `$<secret>:<key>` in the labelled Secrets. Errors name the key and never show a value that
    /// came from a Secret.
    pub fn from_data(
        config_map: &BTreeMap<String, String>,
        secret: &BTreeMap<String, Vec<u8>>,
        labelled: &LabelledSecrets,
    ) -> Result<Self, String> {
        let url = config_map
            .get(URL_KEY)
            .map(|text| text.trim())
            .filter(|text| !text.is_empty())
            .map(parse_url)
            .transpose()
            .map_err(|reason| format!("argocd-cm {URL_KEY}: {reason}"))?;
        let oidc = config_map
            .get(OIDC_CONFIG_KEY)
            .filter(|text| !text.trim().is_empty())
            .map(|text| parse_oidc_config(text, secret, labelled))
            .transpose()
            .map_err(|reason| format!("argocd-cm {OIDC_CONFIG_KEY}: {reason}"))?
            .map(Arc::new);
        Ok(Self { url, oidc })
    }

    /// `<url>/auth/callback`, where the provider sends the browser back to.
    pub fn redirect_uri(&self) -> Option<String> {
        self.url
            .as_ref()
            .map(|url| format!("{}{CALLBACK_PATH}", url.as_str().trim_end_matches('/')))
    }

    /// Whether cookies must be `Secure`: the server is reached over HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.url.as_ref().is_some_and(|url| url.scheme() == "https")
    }
}

fn parse_url(text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|err| format!("{text:?} is not a URL: {err}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!("{text:?} is not an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{text:?} has a query or fragment"));
    }
    Ok(url)
}

fn parse_oidc_config(
    text: &str,
    secret: &BTreeMap<String, Vec<u8>>,
    labelled: &LabelledSecrets,
) -> Result<OidcConfig, String> {
    let raw: RawConfig = serde_yaml::from_str(text).map_err(|err| err.to_string())?;
    let issuer = raw.issuer.trim().to_string();
    if issuer.is_empty() {
        return Err("issuer is required".to_string());
    }
    parse_url(&issuer).map_err(|reason| format!("issuer: {reason}"))?;
    let client_id = resolve(&raw.client_id, secret, labelled)
        .map_err(|reason| format!("clientID: {reason}"))?;
    if client_id.is_empty() {
        return Err("clientID is required".to_string());
    }
    let client_secret = resolve(&raw.client_secret, secret, labelled)
        .map_err(|reason| format!("clientSecret: {reason}"))?;
    let requested_scopes = if raw.requested_scopes.is_empty() {
        DEFAULT_SCOPES
            .iter()
            .map(|scope| scope.to_string())
            .collect()
    } else {
        raw.requested_scopes
    };
    let non_empty = |text: String| Some(text.trim().to_string()).filter(|t| !t.is_empty());
    let logout_url = non_empty(raw.logout_url);
    if let Some(logout_url) = &logout_url {
        // The placeholders are filled in before use, so only check what surrounds them.
        let template = logout_url
            .replace("{{token}}", "t")
            .replace("{{logoutRedirectURL}}", "u");
        Url::parse(&template).map_err(|err| format!("logoutURL: {err}"))?;
    }
    Ok(OidcConfig {
        name: raw.name,
        issuer,
        client_id,
        client_secret: non_empty(client_secret),
        cli_client_id: non_empty(raw.cli_client_id),
        requested_scopes,
        requested_id_token_claims: raw
            .requested_id_token_claims
            .into_iter()
            .map(|(name, claim)| (name, claim.unwrap_or_default()))
            .collect(),
        root_ca: non_empty(raw.root_ca),
        logout_url,
    })
}

/// A value as Argo CD reads it: `$<key>` is `argocd-secret`'s key, `$<secret>:<key>` the key of a
/// Secret labelled `app.kubernetes.io/part-of: argocd`; anything else is the value itself.
/// Unlike Argo CD, which keeps the reference as the value, a missing key is an error.
fn resolve(
    value: &str,
    secret: &BTreeMap<String, Vec<u8>>,
    labelled: &LabelledSecrets,
) -> Result<String, String> {
    let Some(reference) = value.trim().strip_prefix('$') else {
        return Ok(value.trim().to_string());
    };
    let found = match reference.split_once(':') {
        Some((name, key)) => labelled
            .get(name)
            .ok_or_else(|| {
                format!(
                    "{value} names Secret {name:?}, which is missing or not labelled \
                     {PART_OF_LABEL}"
                )
            })?
            .get(key)
            .ok_or_else(|| format!("{value}: Secret {name:?} has no key {key:?}"))?,
        None => secret
            .get(reference)
            .ok_or_else(|| format!("{value}: argocd-secret has no key {reference:?}"))?,
    };
    String::from_utf8(found.clone())
        .map(|text| text.trim().to_string())
        .map_err(|_| format!("{value} is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cm(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn data(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn nothing_configured_is_no_sso() {
        let settings = SsoSettings::from_data(&cm(&[]), &data(&[]), &Default::default()).unwrap();
        assert_eq!(settings, SsoSettings::default());
        assert_eq!(settings.redirect_uri(), None);
    }

    #[test]
    fn defaults_apply_and_the_redirect_uri_follows_url() {
        let settings = SsoSettings::from_data(
            &cm(&[
                ("url", "https://cd.example.com/"),
                (
                    "oidc.config",
                    "name: Okta\nissuer: https://example.okta.com\nclientID: ferry\n",
                ),
            ]),
            &data(&[]),
            &Default::default(),
        )
        .unwrap();
        let oidc = settings.oidc.as_deref().unwrap();
        assert_eq!(oidc.name, "Okta");
        assert_eq!(oidc.requested_scopes, DEFAULT_SCOPES);
        assert_eq!(oidc.client_secret(), None);
        assert_eq!(oidc.cli_client_id, None);
        assert_eq!(
            settings.redirect_uri().as_deref(),
            Some("https://cd.example.com/auth/callback")
        );
        assert!(settings.secure_cookies());
    }

    #[test]
    fn secret_references_resolve_in_argocd_secret_and_labelled_secrets() {
        let config = "issuer: https://idp.example.com/\nclientID: $oidc-app:id\n\
                      clientSecret: $oidc.okta.clientSecret\ncliClientID: ferry-cli\n\
                      requestedScopes: [openid, groups]\n\
                      requestedIDTokenClaims: {groups: {essential: true}, acr: {values: [a, b]}}\n\
                      rootCA: |\n  -----BEGIN CERTIFICATE-----\n  ...\n\
                      logoutURL: https://idp.example.com/logout?id_token_hint={{token}}\n";
        let labelled = LabelledSecrets::from([("oidc-app".to_string(), data(&[("id", "web\n")]))]);
        let settings = SsoSettings::from_data(
            &cm(&[("oidc.config", config)]),
            &data(&[("oidc.okta.clientSecret", " s3cret ")]),
            &labelled,
        )
        .unwrap();
        let oidc = settings.oidc.unwrap();
        assert_eq!(oidc.client_id, "web");
        assert_eq!(oidc.client_secret(), Some("s3cret"));
        assert_eq!(oidc.audiences(), ["web", "ferry-cli"]);
        assert_eq!(oidc.requested_scopes, ["openid", "groups"]);
        assert!(oidc.requested_id_token_claims["groups"].essential);
        assert_eq!(oidc.requested_id_token_claims["acr"].values, ["a", "b"]);
        assert!(oidc.root_ca.as_deref().unwrap().starts_with("-----BEGIN"));
        let debug = format!("{oidc:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
    }

    #[test]
    fn bad_settings_are_errors_naming_the_key_without_secret_values() {
        let err = |config_map: &[(&str, &str)], secret: &[(&str, &str)]| {
            SsoSettings::from_data(&cm(config_map), &data(secret), &Default::default()).unwrap_err()
        };
        assert_eq!(
            err(&[("oidc.config", "clientID: x")], &[]),
            "argocd-cm oidc.config: issuer is required"
        );
        assert_eq!(
            err(&[("oidc.config", "issuer: https://idp\n")], &[]),
            "argocd-cm oidc.config: clientID is required"
        );
        assert!(
            err(
                &[("oidc.config", "issuer: idp.example.com\nclientID: x")],
                &[]
            )
            .starts_with("argocd-cm oidc.config: issuer: \"idp.example.com\" is not a URL")
        );
        assert_eq!(
            err(
                &[(
                    "oidc.config",
                    "issuer: https://idp\nclientID: x\nclientSecret: $missing"
                )],
                &[("other", "hunter2")]
            ),
            "argocd-cm oidc.config: clientSecret: $missing: argocd-secret has no key \"missing\""
        );
        assert_eq!(
            err(
                &[(
                    "oidc.config",
                    "issuer: https://idp\nclientID: x\nclientSecret: $app:key"
                )],
                &[]
            ),
            "argocd-cm oidc.config: clientSecret: $app:key names Secret \"app\", which is \
             missing or not labelled app.kubernetes.io/part-of=argocd"
        );
        assert!(err(&[("oidc.config", "issuer: [")], &[]).starts_with("argocd-cm oidc.config: "));
        assert!(err(&[("url", "ftp://cd")], &[]).starts_with("argocd-cm url: "));
        assert!(err(&[("url", "https://cd/?x=1")], &[]).contains("query"));
    }
}
