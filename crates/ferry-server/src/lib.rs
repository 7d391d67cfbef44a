//! API server: REST, events, auth, RBAC, webhooks, metrics.
//!
//! - [`api`]: the HTTP API on Argo CD's paths and JSON shapes ([`api::router`]), served by
//!   [`serve`] over settings that [`settings_watch`] keeps current;
//! - accounts, sessions, RBAC and SSO come from [`ferry_auth`] (the CLI uses them too);
//! - [`metrics`]: Prometheus metrics of requests, logins and webhook deliveries;
//! - [`webhook`]: verification and parsing of Git providers' push webhooks, and which
//!   Application sources a push concerns; `POST /api/webhook` refreshes those Applications.

pub mod api;
pub mod metrics;
mod server;
pub mod settings_watch;
pub mod webhook;

// The server's modules name them `crate::auth`, `crate::rbac` and `crate::oidc`.
use ferry_auth::{auth, oidc, rbac};

pub use api::{AppState, router};
pub use server::{serve, serve_tls, tls_config};
