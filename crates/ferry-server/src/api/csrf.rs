//! Cross-site request forgery (Argo CD's CVE-2024-22424): a browser sends the `argocd.token`
//! cookie with any cross-site form post, so a request that changes something and is
//! authenticated by that cookie must carry a content type no form can send — `application/json`,
//! or what argocd-cm's `server.api.content.types` lists (`;`-separated; empty turns the check
//! off, as in Argo CD). Callers with a bearer token are not at risk: no browser adds one by
//! itself.

use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::authn::{TOKEN_COOKIE, cookie};
use super::state::AppState;

/// The argocd-cm key listing the content types allowed on cookie-authenticated writes.
pub const CONTENT_TYPES_KEY: &str = "server.api.content.types";
const DEFAULT_CONTENT_TYPES: &str = "application/json";

/// Middleware: 415 for a state-changing request authenticated by the session cookie whose
/// content type is not allowed.
pub async fn require_json_for_cookie_writes(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let headers = request.headers();
    let safe = matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let bearer = headers.contains_key(header::AUTHORIZATION);
    if safe || bearer || cookie(headers, TOKEN_COOKIE).is_none() {
        return next.run(request).await;
    }
    let settings = state.settings();
    let allowed = settings
        .argocd_cm()
        .get(CONTENT_TYPES_KEY)
        .map_or(DEFAULT_CONTENT_TYPES, String::as_str);
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    if allowed.trim().is_empty() || is_allowed(allowed, content_type) {
        return next.run(request).await;
    }
    let shown = if content_type.is_empty() {
        "none"
    } else {
        content_type
    };
    (
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        format!(
            "invalid content type {shown:?}: a request authenticated by the session cookie that \
             changes something must be sent as {allowed}"
        ),
    )
        .into_response()
}

/// Whether `content_type`'s media type (parameters such as `charset` aside) is one of the
/// `;`-separated `allowed`.
fn is_allowed(allowed: &str, content_type: &str) -> bool {
    let media_type = content_type.split(';').next().unwrap_or_default().trim();
    !media_type.is_empty()
        && allowed
            .split(';')
            .map(str::trim)
            .any(|allowed| allowed.eq_ignore_ascii_case(media_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_compare_without_parameters_or_case() {
        assert!(is_allowed("application/json", "application/json"));
        assert!(is_allowed(
            "application/json",
            "Application/JSON; charset=utf-8"
        ));
        assert!(is_allowed(
            "text/plain;application/json",
            "application/json"
        ));
        for refused in [
            "",
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/json-patch+json",
            "; application/json",
        ] {
            assert!(!is_allowed("application/json", refused), "{refused}");
        }
    }
}
