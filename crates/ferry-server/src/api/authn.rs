//! Who is calling: the token of `Authorization: Bearer <jwt>` or of the `argocd.token` cookie
//! (Argo CD's UI), verified against the current settings: ferry's own tokens with the server key,
//! ID tokens of the `oidc.config` provider against the provider's keys.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::error::ApiError;
use super::state::{AppState, Snapshot};
use crate::auth::{Claims, Principal};
use crate::oidc::{OidcConfig, OidcError, SsoUser};
use crate::rbac::{DEFAULT_SCOPES, Subject};

/// The cookie Argo CD's UI keeps its session token in.
pub const TOKEN_COOKIE: &str = "argocd.token";

/// A verified caller, put in the request's extensions by [`require_caller`].
#[derive(Debug, Clone)]
pub enum Caller {
    /// A token ferry (or Argo CD) signed: a local account's session or API token, or a project
    /// role token.
    Local(Claims),
    /// A user of the SSO provider, by its ID token.
    Sso(SsoUser),
}

impl Caller {
    /// The RBAC subject and the name operations are initiated by: the account,
    /// `proj:<project>:<role>`, or the SSO user.
    pub fn name(&self) -> String {
        match self {
            Self::Local(claims) => claims.principal.to_string(),
            Self::Sso(user) => user.subject.clone(),
        }
    }

    /// The RBAC subject, with an SSO user's groups.
    pub fn subject(&self) -> Subject {
        match self {
            Self::Local(_) => Subject::new(self.name()),
            Self::Sso(user) => Subject::new(&user.subject).with_groups(user.groups.iter().cloned()),
        }
    }

    /// The local account behind a session or API token; none for a project role token or an
    /// SSO user.
    pub fn account(&self) -> Option<&str> {
        match self {
            Self::Local(Claims {
                principal: Principal::Account { name, .. },
                ..
            }) => Some(name),
            Self::Local(_) | Self::Sso(_) => None,
        }
    }
}

/// The token a request carries, if any: the bearer token wins over the cookie.
pub fn request_token(headers: &HeaderMap) -> Option<&str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    bearer.or_else(|| cookie(headers, TOKEN_COOKIE))
}

/// The value of the cookie `name`, if the request carries it non-empty.
pub fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// The caller a request's token proves, under the current settings. A token whose `iss` is the
/// SSO provider's is verified by the provider's keys; any other by ferry's server key.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = request_token(headers)
        .ok_or_else(|| ApiError::unauthenticated("no session information"))?;
    let caller = verify(state, token).await?;
    if state.revocations().is_revoked(token) {
        return Err(ApiError::unauthenticated(
            "invalid session: the token has been revoked by a logout",
        ));
    }
    Ok(caller)
}

/// The caller `token` proves, revocations aside.
async fn verify(state: &AppState, token: &str) -> Result<Caller, ApiError> {
    let settings = state.settings();
    let sso_provider = settings
        .sso()
        .ok()
        .and_then(|sso| sso.oidc.as_deref())
        .filter(|oidc| unverified_issuer(token).as_deref() == Some(oidc.issuer.as_str()));
    if let Some(oidc) = sso_provider {
        let claims = verify_sso_token(state, oidc, token).await?;
        let user = SsoUser::from_claims(&claims, &group_scopes(&settings));
        return sso_caller(&settings, user);
    }
    let claims = settings
        .sessions()?
        .verify(token, |project| settings.project(project))
        .map_err(|err| ApiError::invalid_session(&err))?;
    Ok(Caller::Local(claims))
}

/// The caller an SSO user is, unless its subject could be mistaken for one of ferry's own: a
/// local account (an IdP user named `admin` is not the admin), a project role (`proj:p:r`) or
/// an RBAC role (`role:admin`). Such users are refused outright rather than renamed, so no
/// policy line written for the local subject ever applies to them. Groups naming project roles
/// are dropped for the same reason.
pub fn sso_caller(settings: &Snapshot, mut user: SsoUser) -> Result<Caller, ApiError> {
    let reserved = if user.subject.is_empty() {
        Some("it is empty")
    } else if RESERVED_PREFIXES
        .iter()
        .any(|prefix| user.subject.starts_with(prefix))
    {
        Some("it names a project or RBAC role")
    } else if settings
        .sessions()?
        .settings()
        .accounts
        .get(&user.subject)
        .is_some()
    {
        Some("it is the name of a local account")
    } else {
        None
    };
    if let Some(reason) = reserved {
        tracing::warn!(subject = user.subject, reason, "SSO user refused");
        return Err(ApiError::unauthenticated(format!(
            "invalid session: the SSO subject {:?} cannot be used: {reason}",
            user.subject
        )));
    }
    user.groups
        .retain(|group| !group.starts_with(PROJECT_SUBJECT_PREFIX));
    Ok(Caller::Sso(user))
}

/// Subjects of project role tokens begin with this.
const PROJECT_SUBJECT_PREFIX: &str = "proj:";
/// What an SSO subject may not begin with.
const RESERVED_PREFIXES: [&str; 2] = [PROJECT_SUBJECT_PREFIX, "role:"];

/// The claims of an ID token of the SSO provider, for its web or CLI client.
async fn verify_sso_token(
    state: &AppState,
    oidc: &OidcConfig,
    token: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ApiError> {
    let provider = state
        .oidc_providers()
        .get(&oidc.issuer, oidc.root_ca.as_deref())
        .map_err(|err| sso_error(&err))?;
    provider
        .verify(token, &oidc.audiences(), None)
        .await
        .map_err(|err| sso_error(&err))
}

/// The claims whose values are an SSO user's groups: `argocd-rbac-cm`'s `scopes`.
pub fn group_scopes(settings: &Snapshot) -> Vec<String> {
    match settings.policy() {
        Ok(policy) => policy.scopes().to_vec(),
        // Authorization fails anyway then; the groups are only shown.
        Err(_) => DEFAULT_SCOPES
            .iter()
            .map(|scope| scope.to_string())
            .collect(),
    }
}

/// The answer to a failed SSO step: the provider being away is no fault of the caller's.
pub fn sso_error(err: &OidcError) -> ApiError {
    match err {
        OidcError::Rejected(reason) => {
            ApiError::unauthenticated(format!("invalid session: {reason}"))
        }
        OidcError::Unavailable { .. } | OidcError::Setting(_) => {
            tracing::warn!(error = %err, "SSO failed");
            ApiError::unavailable(format!("SSO is unavailable: {err}"))
        }
    }
}

/// The `iss` a JWT claims, read without verifying anything: it only chooses which keys will
/// verify the token.
fn unverified_issuer(token: &str) -> Option<String> {
    Some(unverified_claims(token)?.get("iss")?.as_str()?.to_string())
}

/// The `exp` of a token already verified, whoever issued it.
pub fn token_expiry(token: &str) -> Option<i64> {
    unverified_claims(token)?.get("exp")?.as_i64()
}

/// The claims of a JWT, not verified.
fn unverified_claims(token: &str) -> Option<serde_json::Map<String, serde_json::Value>> {
    let payload = token.split('.').nth(1)?;
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

/// Middleware for the routes that need a caller: 401 without a valid token.
pub async fn require_caller(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state, request.headers()).await?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use axum::http::HeaderValue;

    use super::*;

    fn headers(entries: &[(header::HeaderName, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in entries {
            headers.append(name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn tokens_come_from_the_bearer_header_or_the_cookie() {
        let bearer = headers(&[(header::AUTHORIZATION, "Bearer abc.def")]);
        assert_eq!(request_token(&bearer), Some("abc.def"));
        let cookie = headers(&[(header::COOKIE, "theme=dark; argocd.token=xyz; other=1")]);
        assert_eq!(request_token(&cookie), Some("xyz"));
        let both = headers(&[
            (header::AUTHORIZATION, "Bearer from-header"),
            (header::COOKIE, "argocd.token=from-cookie"),
        ]);
        assert_eq!(request_token(&both), Some("from-header"));
    }

    #[test]
    fn other_schemes_and_empty_values_are_no_token() {
        for case in [
            headers(&[]),
            headers(&[(header::AUTHORIZATION, "Basic YWRtaW46cGFzcw==")]),
            headers(&[(header::AUTHORIZATION, "Bearer ")]),
            headers(&[(header::COOKIE, "argocd.token=")]),
            headers(&[(header::COOKIE, "argocd.tokenx=abc")]),
        ] {
            assert_eq!(request_token(&case), None, "{case:?}");
        }
    }

    #[test]
    fn project_role_tokens_have_no_account() {
        let caller = Caller::Local(Claims {
            principal: Principal::ProjectRole {
                project: "team-a".into(),
                role: "ci".into(),
            },
            issued_at: 0,
            expires_at: None,
            id: "t".into(),
        });
        assert_eq!(caller.name(), "proj:team-a:ci");
        assert_eq!(caller.account(), None);
    }

    #[test]
    fn sso_users_are_subjects_with_their_groups() {
        let caller = Caller::Sso(SsoUser {
            subject: "alice".into(),
            groups: vec!["org:team-a".into()],
            issuer: "https://idp.example.com".into(),
        });
        assert_eq!(caller.name(), "alice");
        assert_eq!(caller.account(), None);
        assert_eq!(
            caller.subject(),
            Subject::new("alice").with_groups(["org:team-a"])
        );
    }

    #[test]
    fn sso_subjects_that_could_pass_for_local_ones_are_refused() {
        let config_map = BTreeMap::from([("accounts.alice".to_string(), "login".to_string())]);
        let secret = BTreeMap::from([(
            "server.secretkey".to_string(),
            b"a key of the server, long enough".to_vec(),
        )]);
        let settings = Snapshot::build(
            &config_map,
            &secret,
            &BTreeMap::new(),
            Vec::new(),
            &Default::default(),
        );
        let user = |subject: &str, groups: &[&str]| SsoUser {
            subject: subject.into(),
            groups: groups.iter().map(|group| group.to_string()).collect(),
            issuer: "https://idp.example.com".into(),
        };
        for (subject, reason) in [
            ("admin", "the name of a local account"),
            ("alice", "the name of a local account"),
            ("proj:team-a:ci", "names a project or RBAC role"),
            ("role:admin", "names a project or RBAC role"),
            ("", "it is empty"),
        ] {
            let err = sso_caller(&settings, user(subject, &[])).unwrap_err();
            assert_eq!(err.code, super::super::error::Code::Unauthenticated);
            assert!(err.message.contains(reason), "{subject}: {}", err.message);
        }
        let Ok(Caller::Sso(kept)) =
            sso_caller(&settings, user("kilgore", &["authors", "proj:team-a:ci"]))
        else {
            panic!("an ordinary SSO user is refused");
        };
        assert_eq!(kept.groups, ["authors"]);
    }

    #[test]
    fn the_issuer_is_read_from_any_jwt_without_verifying_it() {
        let payload = URL_SAFE_NO_PAD.encode(r#"{"iss":"https://idp.example.com","sub":"x"}"#);
        assert_eq!(
            unverified_issuer(&format!("e30.{payload}.sig")).as_deref(),
            Some("https://idp.example.com")
        );
        for token in ["", "abc", "e30.!!.x", "e30.e30.x"] {
            assert_eq!(unverified_issuer(token), None, "{token}");
        }
    }
}
