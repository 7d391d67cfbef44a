//! Everything authentication reads from Argo CD's settings, in one snapshot.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ferry_types::duration::parse_go_duration;

use super::accounts::Accounts;
use super::error::AuthError;
use super::password::{DEFAULT_PASSWORD_PATTERN, PASSWORD_PATTERN_KEY, PasswordPolicy};

/// Argo CD's main ConfigMap, in the control namespace.
pub const CONFIG_MAP_NAME: &str = "argocd-cm";
/// Argo CD's main Secret, in the control namespace.
pub const SECRET_NAME: &str = "argocd-secret";
/// The `argocd-secret` key holding the key tokens are signed with.
pub const SERVER_KEY_KEY: &str = "server.secretkey";
/// The `argocd-cm` key holding how long a session lasts (a Go duration such as `24h`).
pub const SESSION_DURATION_KEY: &str = "users.session.duration";
pub const DEFAULT_SESSION_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The HMAC key every token is signed with. Argo CD generates 32 random bytes and stores their
/// base64 text, and signs with that text's bytes; ferry does the same, so the two accept each
/// other's tokens. Never empty; Debug output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct ServerKey(Vec<u8>);

impl ServerKey {
    pub(crate) fn generate() -> Self {
        Self(STANDARD.encode(rand::random::<[u8; 32]>()).into_bytes())
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey(<redacted>)")
    }
}

/// The accounts, the signing key and the rules for sessions and passwords, from the data of
/// `argocd-cm` and `argocd-secret`.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub accounts: Accounts,
    /// Absent until the server's first start generates it.
    pub server_key: Option<ServerKey>,
    /// `users.session.duration`, 24 hours by default.
    pub session_duration: Duration,
    /// `passwordPattern`, for new passwords.
    pub password_policy: PasswordPolicy,
}

impl AuthSettings {
    pub fn from_data(
        config_map: &BTreeMap<String, String>,
        secret: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, AuthError> {
        let setting_error = |key: &str, reason: String| AuthError::Setting {
            object: CONFIG_MAP_NAME,
            key: key.to_string(),
            reason,
        };
        let session_duration = match config_map.get(SESSION_DURATION_KEY) {
            None => DEFAULT_SESSION_DURATION,
            Some(text) => match parse_go_duration(text) {
                Ok(duration) if duration.as_secs() > 0 => duration,
                Ok(_) => {
                    return Err(setting_error(
                        SESSION_DURATION_KEY,
                        "sessions must last at least a second".to_string(),
                    ));
                }
                Err(err) => return Err(setting_error(SESSION_DURATION_KEY, err.to_string())),
            },
        };
        let pattern = config_map
            .get(PASSWORD_PATTERN_KEY)
            .filter(|pattern| !pattern.is_empty())
            .map_or(DEFAULT_PASSWORD_PATTERN, String::as_str);
        let password_policy = PasswordPolicy::new(pattern)
            .map_err(|err| setting_error(PASSWORD_PATTERN_KEY, err.to_string()))?;
        Ok(Self {
            accounts: Accounts::from_data(config_map, secret)?,
            server_key: secret
                .get(SERVER_KEY_KEY)
                .filter(|key| !key.is_empty())
                .map(|key| ServerKey(key.clone())),
            session_duration,
            password_policy,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::accounts::tests::{config_map, secret};
    use super::*;

    #[test]
    fn defaults_apply_when_nothing_is_set() {
        let settings = AuthSettings::from_data(&BTreeMap::new(), &BTreeMap::new()).unwrap();
        assert_eq!(settings.server_key, None);
        assert_eq!(settings.session_duration, Duration::from_secs(86_400));
        assert!(settings.password_policy.check("12345678").is_ok());
        assert!(settings.password_policy.check("1234567").is_err());
        assert!(settings.accounts.get("admin").is_some());
    }

    #[test]
    fn settings_come_from_argo_cd_keys() {
        let cm = config_map(&[
            ("users.session.duration", "1h30m"),
            ("passwordPattern", "^.{12,}$"),
        ]);
        let data = secret(&[("server.secretkey", "aGVsbG8gd29ybGQ=")]);
        let settings = AuthSettings::from_data(&cm, &data).unwrap();
        assert_eq!(settings.session_duration, Duration::from_secs(5400));
        assert!(settings.password_policy.check("12345678").is_err());
        assert!(settings.password_policy.check("123456789012").is_ok());
        assert_eq!(
            settings.server_key.as_ref().unwrap().as_bytes(),
            b"aGVsbG8gd29ybGQ="
        );
        let debug = format!("{settings:?}");
        assert!(!debug.contains("aGVsbG8"), "{debug}");
        assert!(debug.contains("ServerKey(<redacted>)"), "{debug}");
    }

    #[test]
    fn bad_settings_are_errors_naming_the_key() {
        let err = |entries: &[(&str, &str)]| {
            AuthSettings::from_data(&config_map(entries), &BTreeMap::new())
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("users.session.duration", "1 day")]),
            "argocd-cm users.session.duration: invalid duration \"1 day\": unknown unit"
        );
        assert_eq!(
            err(&[("users.session.duration", "0s")]),
            "argocd-cm users.session.duration: sessions must last at least a second"
        );
        assert!(err(&[("passwordPattern", "([")]).starts_with("argocd-cm passwordPattern: "));
    }

    #[test]
    fn generated_keys_are_base64_of_32_random_bytes() {
        let key = ServerKey::generate();
        assert_eq!(key.as_bytes().len(), 44);
        assert_eq!(STANDARD.decode(key.as_bytes()).unwrap().len(), 32);
        assert_ne!(ServerKey::generate(), key);
    }
}
