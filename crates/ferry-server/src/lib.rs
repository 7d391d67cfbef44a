//! API server: REST, events, auth, RBAC, webhooks, metrics.
//!
//! The HTTP layer is still to come; what is here are the pieces it will call:
//! - [`auth`]: Argo CD's local accounts, password logins (with brute-force protection), session,
//!   API and project role tokens, and a fresh install's initial admin password;
//! - [`rbac`]: Argo CD's RBAC model (`argocd-rbac-cm` policies, built-in roles, AppProject
//!   roles), compiled once and enforced per request;
//! - [`webhook`]: verification and parsing of Git providers' push webhooks, and which
//!   Application sources a push concerns.

pub mod auth;
pub mod rbac;
pub mod webhook;
