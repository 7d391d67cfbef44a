//! Local accounts as Argo CD stores them: capabilities and the enabled flag in `argocd-cm`;
//! password hashes, password change times and API token records in `argocd-secret`.
//!
//! ```yaml
//! # argocd-cm                          # argocd-secret
//! accounts.alice: apiKey, login        accounts.alice.password: $2a$10$...
//! accounts.alice.enabled: "false"      accounts.alice.passwordMtime: 2024-06-01T12:00:00Z
//! admin.enabled: "true"                accounts.alice.tokens: '[{"id":"...","iat":1717243200}]'
//!                                      admin.password / admin.passwordMtime / admin.tokens
//! ```
//!
//! The built-in `admin` account always exists, may log in, and keeps its secrets under `admin.*`;
//! `accounts.admin: apiKey` adds capabilities to it.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::error::AuthError;
use super::password::{PasswordHash, PasswordPolicy};
use super::settings::{CONFIG_MAP_NAME, SECRET_NAME};

/// The built-in administrator.
pub const ADMIN: &str = "admin";
const ACCOUNTS_PREFIX: &str = "accounts.";
const ENABLED_SUFFIX: &str = "enabled";

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// Log in with a password and get a session token.
    Login,
    /// Get API tokens.
    ApiKey,
}

impl Capability {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::ApiKey => "apiKey",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "login" => Ok(Self::Login),
            "apiKey" => Ok(Self::ApiKey),
            other => Err(format!(
                "unknown capability {other:?} (the capabilities are apiKey and login)"
            )),
        }
    }
}

/// An API token as `accounts.<name>.tokens` lists it: its id (the token's `jti`), issue time and
/// expiry (Unix seconds, 0 for never). The token itself is never stored; deleting its record
/// revokes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRecord {
    pub id: String,
    pub iat: i64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub exp: i64,
}

fn is_zero(value: &i64) -> bool {
    *value == 0
}

/// One local account. Debug output never shows the password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub enabled: bool,
    /// In the order `argocd-cm` lists them, without repeats.
    pub capabilities: Vec<Capability>,
    pub password_hash: Option<PasswordHash>,
    /// When the password last changed; tokens issued before are no longer accepted.
    pub password_mtime: Option<Timestamp>,
    pub tokens: Vec<TokenRecord>,
}

impl Account {
    fn new(capabilities: Vec<Capability>) -> Self {
        Self {
            enabled: true,
            capabilities,
            password_hash: None,
            password_mtime: None,
            tokens: Vec::new(),
        }
    }

    pub fn has_capability(&self, capability: Capability) -> bool {
        self.capabilities.contains(&capability)
    }

    /// Sets a new password that `policy` accepts, and its change time, which revokes every
    /// token issued before `now`. Save it with [`SettingsPatch::save_account`].
    ///
    /// [`SettingsPatch::save_account`]: super::SettingsPatch::save_account
    pub fn set_password(
        &mut self,
        password: &str,
        policy: &PasswordPolicy,
        now: Timestamp,
    ) -> Result<(), AuthError> {
        policy.check(password)?;
        self.password_hash = Some(PasswordHash::new(password)?);
        self.password_mtime = Some(whole_second(now));
        Ok(())
    }

    fn add_capability(&mut self, capability: Capability) {
        if !self.has_capability(capability) {
            self.capabilities.push(capability);
        }
    }
}

/// `now` without its fraction of a second: `passwordMtime` is stored to the second, as token
/// issue times are, so a token issued in the second the password changed stays valid.
pub(crate) fn whole_second(now: Timestamp) -> Timestamp {
    Timestamp::from_second(now.as_second()).expect("a timestamp's whole seconds are in range")
}

/// Where an account's settings live.
pub(crate) struct AccountKeys {
    pub password: String,
    pub password_mtime: String,
    pub tokens: String,
    /// In `argocd-cm`.
    pub enabled: String,
    /// In `argocd-cm`; `None` for `admin`, whose `login` capability is built in.
    pub capabilities: Option<String>,
}

impl AccountKeys {
    pub(crate) fn of(name: &str) -> Self {
        if name == ADMIN {
            Self {
                password: "admin.password".into(),
                password_mtime: "admin.passwordMtime".into(),
                tokens: "admin.tokens".into(),
                enabled: "admin.enabled".into(),
                capabilities: None,
            }
        } else {
            Self {
                password: format!("{ACCOUNTS_PREFIX}{name}.password"),
                password_mtime: format!("{ACCOUNTS_PREFIX}{name}.passwordMtime"),
                tokens: format!("{ACCOUNTS_PREFIX}{name}.tokens"),
                enabled: format!("{ACCOUNTS_PREFIX}{name}.{ENABLED_SUFFIX}"),
                capabilities: Some(format!("{ACCOUNTS_PREFIX}{name}")),
            }
        }
    }
}

/// Every local account, by name; `admin` is always there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accounts(BTreeMap<String, Account>);

impl Accounts {
    /// The accounts `argocd-cm`'s and `argocd-secret`'s data describe. A value that cannot be
    /// read is an error naming its key, so no account runs on a half-read configuration.
    pub fn from_data(
        config_map: &BTreeMap<String, String>,
        secret: &BTreeMap<String, Vec<u8>>,
    ) -> Result<Self, AuthError> {
        let mut admin = Account::new(vec![Capability::Login]);
        admin.enabled = admin_enabled(config_map)?;
        let mut accounts = BTreeMap::from([(ADMIN.to_string(), admin)]);

        for (key, value) in config_map {
            let Some(rest) = key.strip_prefix(ACCOUNTS_PREFIX) else {
                continue;
            };
            let (name, suffix) = match rest.split_once('.') {
                Some((name, suffix)) => (name, Some(suffix)),
                None => (rest, None),
            };
            if name.is_empty() {
                return Err(cm_error(key, "the account name is empty"));
            }
            let account = accounts
                .entry(name.to_string())
                .or_insert_with(|| Account::new(Vec::new()));
            match suffix {
                None => {
                    for capability in value.split(',').map(str::trim).filter(|c| !c.is_empty()) {
                        account.add_capability(capability.parse().map_err(|e| cm_error(key, e))?);
                    }
                }
                // Read for admin too, after `admin.enabled`, as Argo CD does.
                Some(ENABLED_SUFFIX) => {
                    account.enabled = parse_bool(value).map_err(|e| cm_error(key, e))?;
                }
                Some(_) => {
                    return Err(cm_error(
                        key,
                        "unknown account setting (accounts.<name> lists capabilities, \
                         accounts.<name>.enabled enables the account)",
                    ));
                }
            }
        }

        for (name, account) in &mut accounts {
            read_secrets(name, account, secret)?;
        }
        Ok(Self(accounts))
    }

    pub fn get(&self, name: &str) -> Option<&Account> {
        self.0.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Account)> {
        self.0
            .iter()
            .map(|(name, account)| (name.as_str(), account))
    }
}

/// Whether `admin` is enabled: `accounts.admin.enabled`, else `admin.enabled`, else yes.
pub(crate) fn admin_enabled(config_map: &BTreeMap<String, String>) -> Result<bool, AuthError> {
    let keys = AccountKeys::of(ADMIN);
    let as_any_account = format!("{ACCOUNTS_PREFIX}{ADMIN}.{ENABLED_SUFFIX}");
    [as_any_account, keys.enabled]
        .into_iter()
        .find_map(|key| config_map.get(&key).map(|value| (key, value)))
        .map_or(Ok(true), |(key, value)| {
            parse_bool(value).map_err(|e| cm_error(&key, e))
        })
}

fn read_secrets(
    name: &str,
    account: &mut Account,
    secret: &BTreeMap<String, Vec<u8>>,
) -> Result<(), AuthError> {
    let keys = AccountKeys::of(name);
    let text = |key: &str| -> Result<Option<&str>, AuthError> {
        secret
            .get(key)
            .map(|value| std::str::from_utf8(value).map_err(|_| secret_error(key, "not UTF-8")))
            .transpose()
    };
    account.password_hash = text(&keys.password)?
        .filter(|hash| !hash.is_empty())
        .map(|hash| PasswordHash::from_stored(hash.to_string()));
    account.password_mtime = match text(&keys.password_mtime)? {
        None | Some("") => None,
        Some(mtime) => match (mtime.parse::<Timestamp>(), name) {
            (Ok(time), _) => Some(time),
            // Argo CD's FAQ resets the admin password with `date +%FT%T%Z`, which is no RFC 3339
            // time; Argo CD ignores such an admin mtime (and rewrites it on its next start, as
            // `initial_admin` does), so refusing it would lock out installs that work.
            (Err(_), ADMIN) => None,
            (Err(err), _) => {
                return Err(secret_error(
                    &keys.password_mtime,
                    format!("expected an RFC 3339 time such as 2024-06-01T12:00:00Z: {err}"),
                ));
            }
        },
    };
    account.tokens = match text(&keys.tokens)? {
        None | Some("") => Vec::new(),
        // Argo CD writes `null` for an account that never had a token.
        Some(tokens) => serde_json::from_str::<Option<Vec<TokenRecord>>>(tokens)
            .map_err(|err| {
                secret_error(
                    &keys.tokens,
                    format!("expected a JSON list of {{id, iat, exp}}: {err}"),
                )
            })?
            .unwrap_or_default(),
    };
    Ok(())
}

/// Go's `strconv.ParseBool`, which Argo CD reads these flags with.
fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(format!("expected true or false, not {other:?}")),
    }
}

fn cm_error(key: &str, reason: impl Into<String>) -> AuthError {
    AuthError::Setting {
        object: CONFIG_MAP_NAME,
        key: key.to_string(),
        reason: reason.into(),
    }
}

/// Only ever says what was expected: the value itself may be secret.
fn secret_error(key: &str, reason: impl Into<String>) -> AuthError {
    AuthError::Setting {
        object: SECRET_NAME,
        key: key.to_string(),
        reason: reason.into(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn config_map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    pub(crate) fn secret(entries: &[(&str, &str)]) -> BTreeMap<String, Vec<u8>> {
        entries
            .iter()
            .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
            .collect()
    }

    const ADMIN_HASH: &str = "$2a$10$rRyBsGSHK6.uc8fntPwVIuLVHgsAhAX7TcdrqW/RADU0uh7CaChLa";

    #[test]
    fn argo_cd_shaped_settings_read_as_accounts() {
        let cm = config_map(&[
            ("url", "https://argocd.example.com"),
            ("accounts.alice", "apiKey, login"),
            ("accounts.alice.enabled", "false"),
            ("accounts.ci", "apiKey"),
            ("accounts.viewer", "login,login"),
            ("admin.enabled", "true"),
        ]);
        let secret = secret(&[
            ("admin.password", ADMIN_HASH),
            ("admin.passwordMtime", "2024-06-01T12:00:00Z"),
            ("server.secretkey", "c2VjcmV0"),
            ("accounts.alice.password", ADMIN_HASH),
            ("accounts.alice.passwordMtime", "2024-06-02T08:30:00+02:00"),
            (
                "accounts.ci.tokens",
                r#"[{"id":"8f5c1d2e-4b0a-4c4e-9a57-0d3f1b2c3d4e","iat":1717243200,"exp":1748779200},{"id":"forever","iat":1717243300}]"#,
            ),
            ("accounts.viewer.tokens", "null"),
            ("accounts.ghost.password", ADMIN_HASH),
        ]);
        let accounts = Accounts::from_data(&cm, &secret).unwrap();
        let names: Vec<&str> = accounts.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["admin", "alice", "ci", "viewer"]);

        let admin = accounts.get("admin").unwrap();
        assert!(admin.enabled);
        assert_eq!(admin.capabilities, [Capability::Login]);
        assert!(admin.password_hash.as_ref().unwrap().verify("password"));
        assert_eq!(
            admin.password_mtime,
            Some("2024-06-01T12:00:00Z".parse().unwrap())
        );

        let alice = accounts.get("alice").unwrap();
        assert!(!alice.enabled);
        assert_eq!(alice.capabilities, [Capability::ApiKey, Capability::Login]);
        assert_eq!(
            alice.password_mtime,
            Some("2024-06-02T06:30:00Z".parse().unwrap())
        );

        let ci = accounts.get("ci").unwrap();
        assert!(ci.enabled);
        assert!(ci.has_capability(Capability::ApiKey));
        assert!(!ci.has_capability(Capability::Login));
        assert_eq!(ci.password_hash, None);
        assert_eq!(
            ci.tokens,
            [
                TokenRecord {
                    id: "8f5c1d2e-4b0a-4c4e-9a57-0d3f1b2c3d4e".into(),
                    iat: 1_717_243_200,
                    exp: 1_748_779_200
                },
                TokenRecord {
                    id: "forever".into(),
                    iat: 1_717_243_300,
                    exp: 0
                }
            ]
        );
        assert_eq!(
            accounts.get("viewer").unwrap().capabilities,
            [Capability::Login]
        );
        assert!(accounts.get("viewer").unwrap().tokens.is_empty());
        // Secrets of an account argocd-cm does not define do not make one.
        assert!(accounts.get("ghost").is_none());
    }

    #[test]
    fn admin_exists_without_any_setting_and_can_be_extended_or_disabled() {
        let accounts = Accounts::from_data(&BTreeMap::new(), &BTreeMap::new()).unwrap();
        let admin = accounts.get(ADMIN).unwrap();
        assert!(admin.enabled);
        assert_eq!(admin.capabilities, [Capability::Login]);
        assert_eq!(admin.password_hash, None);

        let cm = config_map(&[("accounts.admin", "apiKey"), ("admin.enabled", "false")]);
        let accounts = Accounts::from_data(&cm, &BTreeMap::new()).unwrap();
        let admin = accounts.get(ADMIN).unwrap();
        assert!(!admin.enabled);
        assert_eq!(admin.capabilities, [Capability::Login, Capability::ApiKey]);

        // `accounts.admin.enabled` wins over `admin.enabled`, as in Argo CD.
        let cm = config_map(&[("accounts.admin.enabled", "0"), ("admin.enabled", "true")]);
        assert!(!admin_enabled(&cm).unwrap());
        assert!(
            !Accounts::from_data(&cm, &BTreeMap::new())
                .unwrap()
                .get(ADMIN)
                .unwrap()
                .enabled
        );
    }

    #[test]
    fn an_admin_mtime_written_by_argo_cds_faq_is_ignored_as_argo_cd_does() {
        let secret = secret(&[
            ("admin.password", ADMIN_HASH),
            ("admin.passwordMtime", "2023-10-02T21:47:40CEST"),
        ]);
        let accounts = Accounts::from_data(&BTreeMap::new(), &secret).unwrap();
        assert_eq!(accounts.get(ADMIN).unwrap().password_mtime, None);
    }

    #[test]
    fn unreadable_settings_are_errors_naming_the_key() {
        type Entries = &'static [(&'static str, &'static str)];
        let cases: &[(Entries, Entries, &str)] = &[
            (
                &[("accounts.alice", "apikey")],
                &[],
                "argocd-cm accounts.alice: unknown capability \"apikey\" (the capabilities \
                 are apiKey and login)",
            ),
            (
                &[("accounts.alice.enabled", "no")],
                &[],
                "argocd-cm accounts.alice.enabled: expected true or false, not \"no\"",
            ),
            (
                &[("admin.enabled", "yes")],
                &[],
                "argocd-cm admin.enabled: expected true or false, not \"yes\"",
            ),
            (
                &[("accounts.alice.password", "x")],
                &[],
                "argocd-cm accounts.alice.password: unknown account setting (accounts.<name> \
                 lists capabilities, accounts.<name>.enabled enables the account)",
            ),
            (
                &[("accounts.", "login")],
                &[],
                "argocd-cm accounts.: the account name is empty",
            ),
            (
                &[("accounts.alice", "login")],
                &[("accounts.alice.passwordMtime", "yesterday")],
                "argocd-secret accounts.alice.passwordMtime: expected an RFC 3339 time such as \
                 2024-06-01T12:00:00Z: ",
            ),
            (
                &[("accounts.alice", "apiKey")],
                &[("accounts.alice.tokens", "{\"id\": \"x\"}")],
                "argocd-secret accounts.alice.tokens: expected a JSON list of {id, iat, exp}: ",
            ),
        ];
        for (cm, secret_entries, expected) in cases {
            let err = Accounts::from_data(&config_map(cm), &secret(secret_entries)).unwrap_err();
            assert!(err.to_string().starts_with(expected), "{err}");
        }
        let not_utf8 = BTreeMap::from([("admin.password".to_string(), vec![0xff, 0xfe])]);
        let err = Accounts::from_data(&BTreeMap::new(), &not_utf8).unwrap_err();
        assert_eq!(err.to_string(), "argocd-secret admin.password: not UTF-8");
    }

    #[test]
    fn setting_a_password_checks_the_policy_and_moves_the_mtime() {
        let mut account = Account::new(vec![Capability::Login]);
        let now: Timestamp = "2024-06-01T12:00:00.75Z".parse().unwrap();
        let err = account
            .set_password("short", &PasswordPolicy::default(), now)
            .unwrap_err();
        assert!(matches!(err, AuthError::PasswordRefused { .. }), "{err}");
        assert_eq!(account.password_hash, None);

        account
            .set_password("long enough", &PasswordPolicy::default(), now)
            .unwrap();
        assert!(
            account
                .password_hash
                .as_ref()
                .unwrap()
                .verify("long enough")
        );
        assert_eq!(
            account.password_mtime,
            Some("2024-06-01T12:00:00Z".parse().unwrap())
        );
    }
}
