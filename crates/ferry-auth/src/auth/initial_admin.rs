//! A fresh install's first start, as Argo CD's API server does it: a random admin password,
//! stored as a bcrypt hash in `argocd-secret` and in plain text in `argocd-initial-admin-secret`
//! for the user to read once; and `server.secretkey`, the token signing key. Deleting
//! `admin.password` makes the next start generate a new password (Argo CD's reset procedure).

use std::collections::BTreeMap;
use std::fmt;

use jiff::Timestamp;
use rand::distr::{Alphanumeric, SampleString};

use super::accounts::{ADMIN, AccountKeys, admin_enabled, whole_second};
use super::error::AuthError;
use super::password::PasswordHash;
use super::patch::SettingsPatch;
use super::settings::{SERVER_KEY_KEY, ServerKey};

/// The Secret holding the generated admin password.
pub const INITIAL_ADMIN_SECRET_NAME: &str = "argocd-initial-admin-secret";
pub const INITIAL_ADMIN_PASSWORD_KEY: &str = "password";
/// Argo CD's: 16 letters and digits, about 95 bits.
const INITIAL_PASSWORD_LENGTH: usize = 16;

/// A generated password, in plain text. Debug output never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct InitialPassword(String);

impl InitialPassword {
    fn generate() -> Self {
        // `rand::rng()` is a CSPRNG (ChaCha, seeded and reseeded from the operating system).
        Self(Alphanumeric.sample_string(&mut rand::rng(), INITIAL_PASSWORD_LENGTH))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for InitialPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("InitialPassword(<redacted>)")
    }
}

/// What a first start adds to the settings.
#[derive(Debug)]
pub struct InitialAdmin {
    /// The generated admin password, when there was none.
    pub password: Option<InitialPassword>,
    /// The `argocd-secret` keys to set; empty when nothing is missing.
    pub settings_patch: SettingsPatch,
}

/// What the settings lack, given the data of `argocd-cm` and `argocd-secret`: a signing key if
/// there is none, and, unless admin is disabled, an admin password (with its change time) if
/// there is none, or just the change time if it is missing or unreadable (Argo CD fixes that
/// one the same way).
pub fn initial_admin(
    config_map: &BTreeMap<String, String>,
    secret: &BTreeMap<String, Vec<u8>>,
    now: Timestamp,
) -> Result<InitialAdmin, AuthError> {
    let is_set = |key: &str| secret.get(key).is_some_and(|value| !value.is_empty());
    let mut settings_patch = SettingsPatch::default();
    if !is_set(SERVER_KEY_KEY) {
        let key = ServerKey::generate();
        settings_patch.set_secret(SERVER_KEY_KEY, Some(key.as_bytes().to_vec()));
    }
    let mut password = None;
    if admin_enabled(config_map)? {
        let keys = AccountKeys::of(ADMIN);
        let now = whole_second(now).to_string().into_bytes();
        let mtime_readable = secret
            .get(&keys.password_mtime)
            .and_then(|mtime| std::str::from_utf8(mtime).ok())
            .is_some_and(|mtime| mtime.parse::<Timestamp>().is_ok());
        if !is_set(&keys.password) {
            let generated = InitialPassword::generate();
            let hash = PasswordHash::new(generated.expose())?;
            settings_patch.set_secret(&keys.password, Some(hash.as_str().as_bytes().to_vec()));
            settings_patch.set_secret(&keys.password_mtime, Some(now));
            password = Some(generated);
        } else if !mtime_readable {
            settings_patch.set_secret(&keys.password_mtime, Some(now));
        }
    }
    Ok(InitialAdmin {
        password,
        settings_patch,
    })
}

#[cfg(test)]
mod tests {
    use super::super::accounts::tests::{config_map, secret};
    use super::super::login_guard::LoginGuard;
    use super::super::session::SessionManager;
    use super::super::settings::AuthSettings;
    use super::*;

    fn now() -> Timestamp {
        "2024-06-01T12:00:00.5Z".parse().unwrap()
    }

    #[test]
    fn a_fresh_install_gets_a_password_and_a_signing_key() {
        let plan = initial_admin(&BTreeMap::new(), &BTreeMap::new(), now()).unwrap();
        let password = plan.password.as_ref().unwrap();
        assert_eq!(password.expose().len(), 16);
        assert!(password.expose().chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(
            plan.settings_patch.secret_keys_set().collect::<Vec<_>>(),
            ["admin.password", "admin.passwordMtime", "server.secretkey"]
        );

        let mut data = BTreeMap::new();
        plan.settings_patch.apply_to_secret(&mut data);
        assert_eq!(data["admin.passwordMtime"], b"2024-06-01T12:00:00Z");
        let settings = AuthSettings::from_data(&BTreeMap::new(), &data).unwrap();
        let admin = settings.accounts.get(ADMIN).unwrap();
        assert!(
            admin
                .password_hash
                .as_ref()
                .unwrap()
                .verify(password.expose())
        );
        let sessions = SessionManager::new(settings).unwrap();
        let login = sessions.login(&LoginGuard::default(), ADMIN, password.expose());
        assert!(login.is_ok(), "{login:?}");

        // Once applied, there is nothing left to do.
        let again = initial_admin(&BTreeMap::new(), &data, now()).unwrap();
        assert!(again.password.is_none());
        assert!(
            again.settings_patch.is_empty(),
            "{:?}",
            again.settings_patch
        );
    }

    #[test]
    fn passwords_are_random() {
        let first = initial_admin(&BTreeMap::new(), &BTreeMap::new(), now()).unwrap();
        let second = initial_admin(&BTreeMap::new(), &BTreeMap::new(), now()).unwrap();
        assert_ne!(first.password, second.password);
        assert_ne!(first.settings_patch, second.settings_patch);
    }

    #[test]
    fn only_what_is_missing_is_generated() {
        let existing = secret(&[
            (
                "admin.password",
                "$2a$10$rRyBsGSHK6.uc8fntPwVIuLVHgsAhAX7TcdrqW/RADU0uh7CaChLa",
            ),
            ("admin.passwordMtime", "2023-10-02T21:47:40CEST"),
        ]);
        let plan = initial_admin(&BTreeMap::new(), &existing, now()).unwrap();
        assert!(plan.password.is_none());
        assert_eq!(
            plan.settings_patch.secret_keys_set().collect::<Vec<_>>(),
            ["admin.passwordMtime", "server.secretkey"]
        );

        let existing = secret(&[
            ("server.secretkey", "a key"),
            ("admin.password", ""),
            ("admin.passwordMtime", "2024-01-01T00:00:00Z"),
        ]);
        let plan = initial_admin(&BTreeMap::new(), &existing, now()).unwrap();
        assert!(plan.password.is_some(), "an empty hash is no password");
        assert_eq!(
            plan.settings_patch.secret_keys_set().collect::<Vec<_>>(),
            ["admin.password", "admin.passwordMtime"]
        );
    }

    #[test]
    fn a_disabled_admin_gets_no_password() {
        let cm = config_map(&[("admin.enabled", "false")]);
        let plan = initial_admin(&cm, &secret(&[("server.secretkey", "k")]), now()).unwrap();
        assert!(plan.password.is_none());
        assert!(plan.settings_patch.is_empty());
        let cm = config_map(&[("admin.enabled", "nope")]);
        assert!(initial_admin(&cm, &BTreeMap::new(), now()).is_err());
    }

    #[test]
    fn debug_never_shows_the_password_or_hash() {
        let plan = initial_admin(&BTreeMap::new(), &BTreeMap::new(), now()).unwrap();
        let debug = format!("{plan:?}");
        let password = plan.password.as_ref().unwrap().expose();
        assert!(!debug.contains(password), "{debug}");
        assert!(!debug.contains("$2b$"), "{debug}");
        assert!(debug.contains("InitialPassword(<redacted>)"), "{debug}");
    }
}
