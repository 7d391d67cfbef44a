//! Who is calling: the token of `Authorization: Bearer <jwt>` or of the `argocd.token` cookie
//! (Argo CD's UI), verified against the current settings.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;

use super::error::ApiError;
use super::state::{AppState, Snapshot};
use crate::auth::{Claims, Principal};
use crate::rbac::Subject;

/// The cookie Argo CD's UI keeps its session token in.
pub const TOKEN_COOKIE: &str = "argocd.token";

/// A verified caller, put in the request's extensions by [`require_caller`].
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: Claims,
}

impl Caller {
    /// The RBAC subject and the name operations are initiated by: the account, or
    /// `proj:<project>:<role>`.
    pub fn name(&self) -> String {
        self.claims.principal.to_string()
    }

    pub fn subject(&self) -> Subject {
        Subject::new(self.name())
    }

    /// The local account behind a session or API token; none for a project role token.
    pub fn account(&self) -> Option<&str> {
        match &self.claims.principal {
            Principal::Account { name, .. } => Some(name),
            Principal::ProjectRole { .. } => None,
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

fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, value)| *key == name && !value.is_empty())
        .map(|(_, value)| value)
}

/// The caller a request's token proves, under `settings`.
pub fn authenticate(settings: &Snapshot, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let token = request_token(headers)
        .ok_or_else(|| ApiError::unauthenticated("no session information"))?;
    let claims = settings
        .sessions()?
        .verify(token, |project| settings.project(project))
        .map_err(|err| ApiError::invalid_session(&err))?;
    Ok(Caller { claims })
}

/// Middleware for the routes that need a caller: 401 without a valid token.
pub async fn require_caller(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let caller = authenticate(&state.settings(), request.headers())?;
    request.extensions_mut().insert(caller);
    Ok(next.run(request).await)
}

#[cfg(test)]
mod tests {
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
        let caller = Caller {
            claims: Claims {
                principal: Principal::ProjectRole {
                    project: "team-a".into(),
                    role: "ci".into(),
                },
                issued_at: 0,
                expires_at: None,
                id: "t".into(),
            },
        };
        assert_eq!(caller.name(), "proj:team-a:ci");
        assert_eq!(caller.account(), None);
    }
}
