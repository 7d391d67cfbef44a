//! Local accounts and sessions, as Argo CD's API server keeps them, so that an Argo CD install's
//! admin password, accounts and tokens keep working with ferry (and the other way round).
//!
//! Where things are, in the control namespace:
//! - `argocd-cm`: `accounts.<name>: apiKey, login` (capabilities), `accounts.<name>.enabled`,
//!   `admin.enabled`, `users.session.duration` (24h by default) and `passwordPattern`;
//! - `argocd-secret`: `admin.password` (bcrypt), `admin.passwordMtime` (RFC 3339),
//!   `admin.tokens`, `accounts.<name>.password`, `.passwordMtime` and `.tokens` (JSON records
//!   `{id, iat, exp}`), and `server.secretkey`, the HMAC key every token is signed with;
//! - `argocd-initial-admin-secret`: the generated admin password, until the user deletes it.
//!
//! [`AuthSettings::from_data`] reads the first two, [`SettingsPatch`] is what to write back, and
//! [`ensure_initial_admin`] fills in a fresh install. A [`SessionManager`] issues and verifies
//! HS256 JWTs with Argo CD's claims (`iss: argocd`, `sub`, `iat`, `nbf`, `exp`, `jti`):
//! sessions from password logins (guarded against brute force by a [`LoginGuard`]), API tokens
//! and project role tokens. A token is only accepted while what it was issued for still holds:
//! the account is enabled and has the capability, its password has not changed since, an API
//! or project token's record is still listed, and no logout has revoked it ([`Revocations`]).
//!
//! Where ferry is stricter than Argo CD, on purpose:
//! - settings it cannot read (an unknown capability, a malformed flag, time or token list) are
//!   errors naming the key, rather than skipped;
//! - a project token with an id is only known by that id (Argo CD also accepts it on the
//!   strength of any record issued in the same second), and only while its role exists;
//! - tokens are not issued for disabled accounts;
//! - logins in progress count towards the brute-force limit.

mod accounts;
mod bootstrap;
mod clock;
mod error;
mod initial_admin;
mod jwt;
mod login_guard;
mod password;
mod patch;
mod project_token;
mod revocation;
mod session;
mod settings;
mod shared_failures;

pub use accounts::{ADMIN, Account, Accounts, Capability, TokenRecord};
pub use bootstrap::ensure_initial_admin;
pub use bootstrap::{secret_data, update_settings_secret};
pub use clock::{Clock, SystemClock};
pub use error::AuthError;
pub use initial_admin::{
    INITIAL_ADMIN_PASSWORD_KEY, INITIAL_ADMIN_SECRET_NAME, InitialAdmin, InitialPassword,
    initial_admin,
};
pub use jwt::{ISSUER, Jwt};
pub use login_guard::{LoginGuard, LoginGuardConfig};
pub use password::{
    BCRYPT_COST, DEFAULT_PASSWORD_PATTERN, PASSWORD_PATTERN_KEY, PasswordHash, PasswordPolicy,
};
pub use patch::SettingsPatch;
pub use project_token::{record_project_token, remove_project_token};
pub use revocation::{REVOKED_TOKENS_CONFIG_MAP, Revocations, revocation_key};
pub use session::{Claims, MAX_USERNAME_LENGTH, Principal, SessionManager};
pub use settings::{
    AuthSettings, CONFIG_MAP_NAME, DEFAULT_SESSION_DURATION, SECRET_NAME, SERVER_KEY_KEY,
    SESSION_DURATION_KEY, ServerKey,
};
pub use shared_failures::{LOGIN_FAILURES_CONFIG_MAP, SharedFailures, share as share_failures};
