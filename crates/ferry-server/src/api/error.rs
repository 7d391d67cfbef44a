//! The one error type of the HTTP API, in the shape Argo CD's grpc-gateway answers with:
//! `{"error": "...", "code": <gRPC code>, "message": "..."}` and the HTTP status grpc-gateway
//! maps that code to, so Argo CD's clients read ferry's errors as they read Argo CD's.

use axum::Json;
use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::auth::AuthError;

/// gRPC status codes, as grpc-gateway puts them in error bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown = 2,
    InvalidArgument = 3,
    NotFound = 5,
    AlreadyExists = 6,
    PermissionDenied = 7,
    ResourceExhausted = 8,
    FailedPrecondition = 9,
    Aborted = 10,
    Internal = 13,
    Unavailable = 14,
    Unauthenticated = 16,
}

impl Code {
    /// grpc-gateway's mapping from gRPC codes to HTTP statuses.
    fn http_status(self) -> StatusCode {
        match self {
            Self::InvalidArgument | Self::FailedPrecondition => StatusCode::BAD_REQUEST,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::PermissionDenied => StatusCode::FORBIDDEN,
            Self::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            Self::AlreadyExists | Self::Aborted => StatusCode::CONFLICT,
            Self::Unknown | Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
        }
    }
}

/// A failed request. The message is shown to the caller: it never holds a password, hash, key
/// or token (the [`AuthError`] messages it is made from do not either).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    /// Seconds after which a refused login may be tried again.
    pub retry_after_secs: Option<u64>,
}

/// Argo CD's answer to a request RBAC refuses, and to one for an object that does not exist
/// where saying so would leak its existence.
pub const PERMISSION_DENIED: &str = "permission denied";

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidArgument, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Code::NotFound, message)
    }

    pub fn already_exists(message: impl Into<String>) -> Self {
        Self::new(Code::AlreadyExists, message)
    }

    pub fn permission_denied() -> Self {
        Self::new(Code::PermissionDenied, PERMISSION_DENIED)
    }

    pub fn failed_precondition(message: impl Into<String>) -> Self {
        Self::new(Code::FailedPrecondition, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(Code::Unauthenticated, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    /// An unexpected failure: the details go to the log, the caller gets a generic message.
    pub fn internal(context: &str, err: &dyn std::error::Error) -> Self {
        tracing::error!(error = %err, "{context}");
        Self::new(Code::Internal, format!("{context} failed"))
    }

    /// A Kubernetes API failure while doing `context`.
    /// The answer to a failed Kubernetes request, with the gRPC code Argo CD gives the same
    /// Kubernetes error (its `kubeErrToGRPC`), so a refusal is a 403 and not a server fault.
    pub fn kube(context: &str, err: &kube::Error) -> Self {
        let kube::Error::Api(status) = err else {
            return Self::internal(context, err);
        };
        let code = match (status.code, status.reason.as_str()) {
            (_, "AlreadyExists") => Code::AlreadyExists,
            (409, _) => {
                return Self::new(
                    Code::Aborted,
                    format!("{context}: the object changed meanwhile; try again"),
                );
            }
            (400 | 422, _) => Code::InvalidArgument,
            (403, _) => Code::PermissionDenied,
            (404, _) => Code::NotFound,
            (429, _) => Code::ResourceExhausted,
            (503 | 504, _) => Code::Unavailable,
            _ => return Self::internal(context, err),
        };
        Self::new(code, format!("{context}: {}", status.message))
    }

    /// The answer to a token that does not verify.
    pub fn invalid_session(err: &AuthError) -> Self {
        match err {
            AuthError::Setting { .. } | AuthError::NoServerKey | AuthError::Kube { .. } => {
                Self::unavailable(format!("sessions cannot be verified: {err}"))
            }
            _ => Self::unauthenticated(format!("invalid session: {err}")),
        }
    }

    /// The answer to a failed password login: one message for every wrong username and password,
    /// a wait for a locked-out username.
    pub fn login_failed(err: &AuthError) -> Self {
        match err {
            AuthError::TooManyFailedLogins {
                retry_after_secs, ..
            } => Self {
                retry_after_secs: Some(*retry_after_secs),
                ..Self::new(Code::ResourceExhausted, err.to_string())
            },
            // Only said to the owner of the password (see `SessionManager::login`).
            AuthError::AccountDisabled { .. } | AuthError::MissingCapability { .. } => {
                Self::unauthenticated(err.to_string())
            }
            AuthError::Setting { .. } | AuthError::NoServerKey | AuthError::Kube { .. } => {
                Self::unavailable(format!("logins are unavailable: {err}"))
            }
            _ => Self::unauthenticated("Invalid username or password"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.message,
            "code": self.code as i32,
            "message": self.message,
        });
        let mut response = (self.code.http_status(), Json(body)).into_response();
        if let Some(secs) = self.retry_after_secs {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Middleware giving every error the API's JSON shape, including the plain-text ones axum
/// answers by itself (a body that is not JSON, too large, a wrong method): clients then parse
/// one shape whatever refused them. The HTTP status stays as it was.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = to_bytes(body, REJECTION_TEXT_LIMIT)
        .await
        .unwrap_or_default();
    let message = match String::from_utf8_lossy(&text).trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        text => text.to_string(),
    };
    let code = match status {
        StatusCode::UNAUTHORIZED => 16,
        StatusCode::FORBIDDEN => 7,
        StatusCode::NOT_FOUND => 5,
        StatusCode::METHOD_NOT_ALLOWED | StatusCode::NOT_IMPLEMENTED => 12,
        StatusCode::TOO_MANY_REQUESTS => 8,
        StatusCode::SERVICE_UNAVAILABLE => 14,
        status if status.is_client_error() => 3,
        _ => 13,
    };
    let body = json!({"error": message, "code": code, "message": message});
    let mut response = (parts.status, Json(body)).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}

/// What the JSON error carries of a plain-text rejection at most.
const REJECTION_TEXT_LIMIT: usize = 4096;

/// The answer to a path no route serves.
pub async fn no_route() -> Response {
    let mut response = ApiError::not_found("no such API path").into_response();
    // For the gRPC gateway: Argo CD's method exists, ferry has no route for it.
    response.extensions_mut().insert(ferry_grpc::Unrouted);
    response
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    async fn render(err: ApiError) -> (StatusCode, Option<String>, Value) {
        let response = err.into_response();
        let status = response.status();
        let retry = response
            .headers()
            .get(header::RETRY_AFTER)
            .map(|v| v.to_str().unwrap().to_string());
        let body = to_bytes(response.into_body(), 1 << 16).await.unwrap();
        (status, retry, serde_json::from_slice(&body).unwrap())
    }

    #[tokio::test]
    async fn errors_have_grpc_gateways_shape_and_status() {
        let cases = [
            (ApiError::invalid_argument("bad"), 400, 3),
            (ApiError::not_found("gone"), 404, 5),
            (ApiError::already_exists("there"), 409, 6),
            (ApiError::permission_denied(), 403, 7),
            (ApiError::failed_precondition("busy"), 400, 9),
            (ApiError::new(Code::Aborted, "conflict"), 409, 10),
            (ApiError::unauthenticated("who"), 401, 16),
            (ApiError::unavailable("later"), 503, 14),
        ];
        for (err, status, code) in cases {
            let message = err.message.clone();
            let (got_status, retry, body) = render(err).await;
            assert_eq!(got_status.as_u16(), status, "{message}");
            assert_eq!(retry, None);
            assert_eq!(
                body,
                json!({"error": message, "code": code, "message": message})
            );
        }
    }

    #[tokio::test]
    async fn kubernetes_refusals_keep_their_meaning() {
        let api = |code: u16, reason: &str| {
            let status: kube::core::Status = serde_json::from_value(json!({
                "status": "Failure", "code": code, "reason": reason,
                "message": format!("refused with {reason}"),
            }))
            .unwrap();
            kube::Error::Api(Box::new(status))
        };
        let cases = [
            (api(403, "Forbidden"), 403, 7),
            (api(404, "NotFound"), 404, 5),
            (api(409, "AlreadyExists"), 409, 6),
            (api(409, "Conflict"), 409, 10),
            (api(422, "Invalid"), 400, 3),
            (api(429, "TooManyRequests"), 429, 8),
            (api(503, "ServiceUnavailable"), 503, 14),
            (api(500, "InternalError"), 500, 13),
        ];
        for (err, status, code) in cases {
            let (got, _, body) = render(ApiError::kube("patching the Deployment web", &err)).await;
            assert_eq!(
                (got.as_u16(), body["code"].as_u64()),
                (status, Some(code)),
                "{body}"
            );
            if status == 403 {
                assert_eq!(
                    body["message"],
                    "patching the Deployment web: refused with Forbidden"
                );
            }
        }
    }

    #[tokio::test]
    async fn login_failures_say_nothing_about_the_account() {
        for err in [
            AuthError::InvalidCredentials,
            AuthError::UsernameTooLong { max: 32 },
            AuthError::UnknownAccount {
                account: "nobody".into(),
            },
        ] {
            let (status, _, body) = render(ApiError::login_failed(&err)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED);
            assert_eq!(body["message"], "Invalid username or password");
        }
    }

    #[tokio::test]
    async fn a_lockout_is_429_with_the_wait() {
        let err = AuthError::TooManyFailedLogins {
            retry_after_secs: 42,
            scope: "from this address",
        };
        let (status, retry, body) = render(ApiError::login_failed(&err)).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry.as_deref(), Some("42"));
        assert_eq!(body["code"], 8);
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("try again in 42 s")
        );
    }

    #[tokio::test]
    async fn bad_tokens_are_401_and_bad_settings_503() {
        let (status, _, body) = render(ApiError::invalid_session(&AuthError::TokenExpired)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["message"], "invalid session: the token has expired");
        let (status, _, _) = render(ApiError::invalid_session(&AuthError::NoServerKey)).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    }
}
