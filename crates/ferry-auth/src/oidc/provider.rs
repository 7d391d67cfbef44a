//! One OpenID provider, through the `openidconnect` crate: discovery and signing keys fetched on
//! first use and kept (the keys fetched again when a token names a key not seen yet, as after a
//! rotation), the authorization-code flow with PKCE (S256), state and nonce, and ID token
//! verification (signature, issuer, audience, expiry, nonce).

use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthPrompt, CoreClientAuthMethod, CoreErrorResponseType, CoreGenderClaim,
    CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
    CoreProviderMetadata, CoreResponseType, CoreRevocableToken, CoreRevocationErrorResponse,
    CoreTokenIntrospectionResponse, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AuthType, AuthenticationFlow, AuthorizationCode, ClaimsVerificationError,
    Client, ClientId, ClientSecret, CsrfToken, EmptyExtraTokenFields, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IdToken, IdTokenFields, IdTokenVerifier, IssuerUrl, JsonWebKeySet,
    JwsSigningAlgorithm, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, RequestTokenError, Scope, SignatureVerificationError, StandardErrorResponse,
    StandardTokenResponse, TokenResponse,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use url::Url;

use super::config::IdTokenClaim;

/// How long a request to the provider may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// The keys are fetched at most this often, however many unknown key ids tokens name: a token
/// with a new key waits for the next fetch rather than fail.
const MIN_KEY_REFRESH: Duration = Duration::from_secs(1);

/// Why a login or a token failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OidcError {
    /// The provider cannot be reached, or answered something unusable: try again later.
    #[error("OIDC provider {issuer}: {reason}")]
    Unavailable { issuer: String, reason: String },
    /// The token, code or login is not acceptable.
    #[error("{0}")]
    Rejected(String),
    /// The settings cannot work (a bad `rootCA`, say).
    #[error("{0}")]
    Setting(String),
}

/// Every claim of an ID token besides the standard ones, so `argocd-rbac-cm`'s `scopes` can name
/// any of them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OtherClaims {
    #[serde(flatten)]
    claims: Map<String, Value>,
}

impl AdditionalClaims for OtherClaims {}

type SsoIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type SsoTokenResponse = StandardTokenResponse<
    IdTokenFields<
        OtherClaims,
        EmptyExtraTokenFields,
        CoreGenderClaim,
        CoreJweContentEncryptionAlgorithm,
        CoreJwsSigningAlgorithm,
    >,
    CoreTokenType,
>;
type SsoClient = Client<
    OtherClaims,
    CoreAuthDisplay,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJsonWebKey,
    CoreAuthPrompt,
    StandardErrorResponse<CoreErrorResponseType>,
    SsoTokenResponse,
    CoreTokenIntrospectionResponse,
    CoreRevocableToken,
    CoreRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// A login sent to the provider and not back yet: what the callback needs to finish it.
/// Deliberately not `Debug`: these are secrets of the login.
pub struct PendingLogin {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
}

/// What a finished login yields. Not `Debug`: it holds the tokens.
pub struct LoginTokens {
    pub id_token: String,
    pub refresh_token: Option<String>,
    /// The verified claims of the ID token.
    pub claims: Map<String, Value>,
}

/// An OpenID provider, by issuer URL.
pub struct Provider {
    issuer: String,
    root_ca: Option<String>,
    http: reqwest::Client,
    /// Discovery and keys, once fetched.
    discovered: RwLock<Option<Discovered>>,
    /// Held while fetching, so concurrent requests share one fetch; readers of `discovered`
    /// never wait for it.
    fetching: tokio::sync::Mutex<()>,
}

struct Discovered {
    metadata: Arc<CoreProviderMetadata>,
    keys_fetched: Instant,
}

impl Provider {
    /// A provider whose TLS certificates are checked against the public roots and, if given,
    /// the PEM certificates of `root_ca`. Nothing is fetched until it is used.
    pub fn new(issuer: &str, root_ca: Option<&str>) -> Result<Self, OidcError> {
        // No redirects: a provider's endpoints answer directly, and following them would let a
        // metadata document point ferry anywhere.
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(HTTP_TIMEOUT);
        if let Some(pem) = root_ca {
            let certificates = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|err| OidcError::Setting(format!("rootCA: {err}")))?;
            if certificates.is_empty() {
                return Err(OidcError::Setting(
                    "rootCA holds no PEM certificate".to_string(),
                ));
            }
            for certificate in certificates {
                builder = builder.add_root_certificate(certificate);
            }
        }
        let http = builder
            .build()
            .map_err(|err| OidcError::Setting(format!("HTTP client: {err}")))?;
        Ok(Self {
            issuer: issuer.to_string(),
            root_ca: root_ca.map(str::to_string),
            http,
            discovered: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
        })
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The scopes the provider says it supports, if it says (`scopes_supported` is optional).
    pub async fn scopes_supported(&self) -> Result<Option<Vec<String>>, OidcError> {
        let metadata = self.metadata().await?;
        Ok(metadata
            .scopes_supported()
            .map(|scopes| scopes.iter().map(|scope| scope.to_string()).collect()))
    }

    /// The URL to send the browser to for a login as `client_id`, asking for `scopes` (and the
    /// ID token claims of `claims`), and what the callback needs to finish it.
    pub async fn start_login(
        &self,
        client_id: &str,
        redirect_uri: &str,
        scopes: &[String],
        claims: &std::collections::BTreeMap<String, IdTokenClaim>,
    ) -> Result<(Url, PendingLogin), OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, client_id, None, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(
                AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge);
        // The crate always asks for `openid`.
        for scope in scopes.iter().filter(|scope| *scope != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        if !claims.is_empty() {
            let claims = serde_json::json!({ "id_token": claims }).to_string();
            request = request.add_extra_param("claims", claims);
        }
        let (url, state, nonce) = request.url();
        Ok((
            url,
            PendingLogin {
                state: state.secret().clone(),
                nonce: nonce.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
            },
        ))
    }

    /// Exchanges the code the provider sent back (with the PKCE verifier of `pending`) and
    /// verifies the ID token it yields: signed by the provider, for `client_id`, carrying the
    /// login's nonce.
    pub async fn finish_login(
        &self,
        client_id: &str,
        client_secret: Option<&str>,
        redirect_uri: &str,
        code: &str,
        pending: &PendingLogin,
    ) -> Result<LoginTokens, OidcError> {
        let metadata = self.metadata().await?;
        let client = self.client(&metadata, client_id, client_secret, redirect_uri)?;
        let response = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|err| self.unavailable(err))?
            .set_pkce_verifier(PkceCodeVerifier::new(pending.pkce_verifier.clone()))
            .request_async(&self.http)
            .await
            .map_err(|err| match err {
                RequestTokenError::ServerResponse(refusal) => OidcError::Rejected(format!(
                    "the provider refused the login: {}{}",
                    refusal.error(),
                    refusal
                        .error_description()
                        .map(|description| format!(": {description}"))
                        .unwrap_or_default()
                )),
                // Only the error's own message: a response body could hold tokens.
                RequestTokenError::Parse(..) => self.unavailable("unreadable token response"),
                other => self.unavailable(other),
            })?;
        let id_token = response
            .id_token()
            .ok_or_else(|| self.unavailable("the token response has no id_token"))?
            .to_string();
        let nonce = Nonce::new(pending.nonce.clone());
        let claims = self.verify(&id_token, &[client_id], Some(&nonce)).await?;
        Ok(LoginTokens {
            id_token,
            refresh_token: response.refresh_token().map(|token| token.secret().clone()),
            claims,
        })
    }

    /// The claims of `token` if it is an ID token this provider signed for one of `audiences`
    /// (client IDs) and has not expired; with `nonce`, only if it carries that nonce.
    pub async fn verify(
        &self,
        token: &str,
        audiences: &[&str],
        nonce: Option<&Nonce>,
    ) -> Result<Map<String, Value>, OidcError> {
        let id_token: SsoIdToken = token
            .parse()
            .map_err(|err| OidcError::Rejected(format!("not an ID token: {err}")))?;
        let mut metadata = self.metadata().await?;
        let mut refreshed = false;
        loop {
            match verified_claims(&metadata, &id_token, audiences, nonce) {
                Err(ClaimsVerificationError::SignatureVerification(
                    SignatureVerificationError::NoMatchingKey,
                )) if !refreshed => {
                    metadata = self.refresh_keys(&metadata).await?;
                    refreshed = true;
                }
                result => {
                    return result.map_err(|err| OidcError::Rejected(err.to_string()));
                }
            }
        }
    }

    fn client(
        &self,
        metadata: &CoreProviderMetadata,
        client_id: &str,
        client_secret: Option<&str>,
        redirect_uri: &str,
    ) -> Result<SsoClient, OidcError> {
        let redirect_uri = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|err| OidcError::Setting(format!("redirect URI: {err}")))?;
        let client = SsoClient::from_provider_metadata(
            metadata.clone(),
            ClientId::new(client_id.to_string()),
            client_secret.map(|secret| ClientSecret::new(secret.to_string())),
        )
        .set_redirect_uri(redirect_uri);
        // HTTP Basic unless the provider only takes the secret in the body.
        let methods = metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|methods| {
            methods.contains(&CoreClientAuthMethod::ClientSecretPost)
                && !methods.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        Ok(if post_only {
            client.set_auth_type(AuthType::RequestBody)
        } else {
            client
        })
    }

    fn current(&self) -> Option<Arc<CoreProviderMetadata>> {
        let discovered = self
            .discovered
            .read()
            .unwrap_or_else(|err| err.into_inner());
        discovered
            .as_ref()
            .map(|discovered| discovered.metadata.clone())
    }

    fn store(&self, metadata: CoreProviderMetadata) -> Arc<CoreProviderMetadata> {
        let metadata = Arc::new(metadata);
        *self
            .discovered
            .write()
            .unwrap_or_else(|err| err.into_inner()) = Some(Discovered {
            metadata: metadata.clone(),
            keys_fetched: Instant::now(),
        });
        metadata
    }

    /// Discovery and keys, fetched on first use.
    async fn metadata(&self) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        if let Some(metadata) = self.current() {
            return Ok(metadata);
        }
        let _fetching = self.fetching.lock().await;
        if let Some(metadata) = self.current() {
            return Ok(metadata);
        }
        let issuer = IssuerUrl::new(self.issuer.clone())
            .map_err(|err| OidcError::Setting(format!("issuer: {err}")))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &self.http)
            .await
            .map_err(|err| self.unavailable(format!("discovery failed: {err}")))?;
        tracing::info!(issuer = self.issuer, "discovered the OIDC provider");
        Ok(self.store(metadata))
    }

    /// The keys fetched again, for a token signed with a key `seen` does not have, unless
    /// another request fetched them meanwhile.
    async fn refresh_keys(
        &self,
        seen: &Arc<CoreProviderMetadata>,
    ) -> Result<Arc<CoreProviderMetadata>, OidcError> {
        let _fetching = self.fetching.lock().await;
        let last_fetch = {
            let discovered = self
                .discovered
                .read()
                .unwrap_or_else(|err| err.into_inner());
            match discovered.as_ref() {
                Some(current) if !Arc::ptr_eq(&current.metadata, seen) => {
                    return Ok(current.metadata.clone());
                }
                Some(current) => current.keys_fetched,
                None => Instant::now(),
            }
        };
        tokio::time::sleep(MIN_KEY_REFRESH.saturating_sub(last_fetch.elapsed())).await;
        let keys = JsonWebKeySet::fetch_async(seen.jwks_uri(), &self.http)
            .await
            .map_err(|err| self.unavailable(format!("fetching the signing keys failed: {err}")))?;
        tracing::info!(
            issuer = self.issuer,
            "fetched the OIDC provider's signing keys again"
        );
        Ok(self.store(CoreProviderMetadata::clone(seen).set_jwks(keys)))
    }

    fn unavailable(&self, reason: impl ToString) -> OidcError {
        OidcError::Unavailable {
            issuer: self.issuer.clone(),
            reason: reason.to_string(),
        }
    }
}

/// Verifies `id_token` for the first of `audiences` it names (the crate checks one client ID,
/// and accepts others only next to it); the other audiences are trusted alongside.
fn verified_claims(
    metadata: &CoreProviderMetadata,
    id_token: &SsoIdToken,
    audiences: &[&str],
    nonce: Option<&Nonce>,
) -> Result<Map<String, Value>, ClaimsVerificationError> {
    // Only the asymmetric algorithms the provider signs with: a client secret is no signing key.
    let algorithms: Vec<CoreJwsSigningAlgorithm> = metadata
        .id_token_signing_alg_values_supported()
        .iter()
        .filter(|alg| !matches!(alg, CoreJwsSigningAlgorithm::None) && !alg.uses_shared_secret())
        .cloned()
        .collect();
    let mut result = Err(ClaimsVerificationError::InvalidAudience(
        "no client ID to check the audience against".to_string(),
    ));
    for audience in audiences {
        let verifier: IdTokenVerifier<CoreJsonWebKey> = IdTokenVerifier::new_public_client(
            ClientId::new(audience.to_string()),
            metadata.issuer().clone(),
            metadata.jwks().clone(),
        )
        .set_allowed_algs(algorithms.clone())
        .set_other_audience_verifier_fn(|other| audiences.contains(&other.as_str()));
        let claims = match nonce {
            Some(nonce) => id_token.claims(&verifier, nonce),
            None => id_token.claims(&verifier, |_: Option<&Nonce>| Ok(())),
        };
        result = claims.map(|claims| match serde_json::to_value(claims) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        });
        if !matches!(result, Err(ClaimsVerificationError::InvalidAudience(_))) {
            break;
        }
    }
    result
}

/// The providers in use, so discovery and keys are fetched once per provider rather than once per
/// settings snapshot: a provider is kept while `oidc.config` names the same issuer and CA.
#[derive(Default)]
pub struct Providers {
    current: Mutex<Option<Arc<Provider>>>,
}

impl Providers {
    pub fn get(&self, issuer: &str, root_ca: Option<&str>) -> Result<Arc<Provider>, OidcError> {
        let mut current = self.current.lock().unwrap_or_else(|err| err.into_inner());
        if let Some(provider) = current
            .as_ref()
            .filter(|provider| provider.issuer == issuer && provider.root_ca.as_deref() == root_ca)
        {
            return Ok(provider.clone());
        }
        let provider = Arc::new(Provider::new(issuer, root_ca)?);
        *current = Some(provider.clone());
        Ok(provider)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_reused_while_issuer_and_ca_stay() {
        let providers = Providers::default();
        let first = providers.get("https://idp.example.com", None).unwrap();
        let again = providers.get("https://idp.example.com", None).unwrap();
        assert!(Arc::ptr_eq(&first, &again));
        let other = providers.get("https://other.example.com", None).unwrap();
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.issuer(), "https://other.example.com");
    }

    #[test]
    fn a_root_ca_without_certificates_is_a_setting_error() {
        let err = Provider::new("https://idp.example.com", Some("not PEM"))
            .err()
            .unwrap();
        assert!(matches!(err, OidcError::Setting(_)), "{err}");
    }
}
