//! Who a caller is and what they may do, as Argo CD decides it: used by the API server for every
//! request and by the CLI (`ferry login --sso`, `ferry admin rbac`) without a server.
//!
//! - [`auth`]: Argo CD's local accounts, password logins (with brute-force protection), session,
//!   API and project role tokens, and a fresh install's initial admin password;
//! - [`rbac`]: Argo CD's RBAC model (`argocd-rbac-cm` policies, built-in roles, AppProject
//!   roles), compiled once and enforced per request;
//! - [`oidc`]: single sign-on with an external OpenID provider (`oidc.config`), for the server's
//!   web flow, bearer tokens and `ferry login --sso`.

pub mod auth;
pub mod oidc;
pub mod rbac;
