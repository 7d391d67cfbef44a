//! API server: REST, events, auth, RBAC, webhooks, metrics.
//!
//! - [`api`]: the HTTP API on Argo CD's paths and JSON shapes ([`api::router`]), served by
//!   [`serve`] over settings that [`settings_watch`] keeps current;
//! - [`auth`]: Argo CD's local accounts, password logins (with brute-force protection), session,
//!   API and project role tokens, and a fresh install's initial admin password;
//! - [`rbac`]: Argo CD's RBAC model (`argocd-rbac-cm` policies, built-in roles, AppProject
//!   roles), compiled once and enforced per request;
//! - [`oidc`]: single sign-on with an external OpenID provider (`oidc.config`), for the web flow
//!   of `/auth/login` and `/auth/callback`, bearer tokens and `ferry login --sso`;
//! - [`metrics`]: Prometheus metrics of requests, logins and webhook deliveries;
//! - [`webhook`]: verification and parsing of Git providers' push webhooks, and which
//!   Application sources a push concerns; `POST /api/webhook` refreshes those Applications.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod oidc;
pub mod rbac;
mod server;
pub mod settings_watch;
pub mod webhook;

pub use api::{AppState, router};
pub use server::{serve, serve_tls, tls_config};
