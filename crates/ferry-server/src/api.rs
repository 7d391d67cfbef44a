//! The HTTP API, on Argo CD's paths and in its JSON shapes, so Argo CD's clients can talk to
//! ferry: [`router`] builds it over an [`AppState`].

mod account;
mod account_store;
mod applications;
mod authn;
mod authz;
mod error;
mod session;
mod state;
mod version;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware::from_fn_with_state;
use axum::routing::{delete, get, post, put};

pub use authn::{Caller, TOKEN_COOKIE};
pub use error::{ApiError, Code};
pub use state::{AppState, Snapshot};

/// Every route: `/api/version` and `/api/v1/session` for anyone, `/api/webhook` for deliveries
/// that carry their provider's signature, the rest for verified callers.
pub fn router(state: AppState) -> Router {
    let protected = Router::new()
        .route("/api/v1/account", get(account::list))
        .route("/api/v1/account/password", put(account::update_password))
        .route(
            "/api/v1/account/can-i/{resource}/{action}/{*object}",
            get(account::can_i),
        )
        .route("/api/v1/account/{name}", get(account::get))
        .route("/api/v1/account/{name}/token", post(account::create_token))
        .route(
            "/api/v1/account/{name}/token/{id}",
            delete(account::delete_token),
        )
        .route("/api/v1/applications", get(applications::list))
        .route("/api/v1/applications/{name}", get(applications::get))
        .route("/api/v1/applications/{name}/sync", post(applications::sync))
        .route_layer(from_fn_with_state(state.clone(), authn::require_caller));
    Router::new()
        .route("/api/version", get(version::version))
        .route(
            "/api/v1/session",
            post(session::login).delete(session::logout),
        )
        .route("/api/v1/session/userinfo", get(session::user_info))
        .route(
            "/api/webhook",
            post(webhook::receive).layer(DefaultBodyLimit::max(crate::webhook::MAX_PAYLOAD_BYTES)),
        )
        .merge(protected)
        .with_state(state)
}
