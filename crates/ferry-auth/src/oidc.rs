//! Single sign-on with an external OpenID Connect provider, configured as in Argo CD:
//!
//! ```yaml
//! # argocd-cm
//! url: https://cd.example.com           # the provider sends browsers back to <url>/auth/callback
//! oidc.config: |
//!   name: Okta
//!   issuer: https://example.okta.com
//!   clientID: ferry
//!   clientSecret: $oidc.okta.clientSecret    # a key of argocd-secret, or $<secret>:<key>
//!   cliClientID: ferry-cli                   # `ferry login --sso` logs in as this client
//!   requestedScopes: [openid, profile, email, groups]
//! ```
//!
//! [`SsoSettings`] reads that; a [`Provider`] (discovery, keys, code flow with PKCE, ID token
//! verification) does the OpenID part through the `openidconnect` crate; [`LoginState`] carries a
//! browser's login between `/auth/login` and `/auth/callback`; [`checked_return_url`] keeps the
//! final redirect on this server; and [`SsoUser`] is who a verified token names, with the RBAC
//! groups `argocd-rbac-cm`'s `scopes` picks from its claims.

mod claims;
mod config;
mod login_state;
mod provider;
mod redirect;

pub use claims::SsoUser;
pub use config::{
    CALLBACK_PATH, DEFAULT_SCOPES, IdTokenClaim, LabelledSecrets, OIDC_CONFIG_KEY, OidcConfig,
    PART_OF_LABEL, SsoSettings, URL_KEY,
};
pub use login_state::{LoginState, STATE_COOKIE, STATE_MAX_AGE_SECS, StateError};
pub use openidconnect::Nonce;
pub use provider::{LoginTokens, OidcError, PendingLogin, Provider, Providers};
pub use redirect::{INVALID_RETURN_URL, checked_return_url};
