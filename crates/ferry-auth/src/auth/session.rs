//! Issuing and verifying tokens: session tokens for password logins, API tokens for accounts
//! with the `apiKey` capability, and (in [`super::project_token`]) project role tokens.
//!
//! A token's `sub` says what it is, as Argo CD writes it: `<account>:login` for a session,
//! `<account>:apiKey` for an API token (a bare `<account>`, from older Argo CD versions, is an API
//! token too), `proj:<project>:<role>` for a project role token.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use ferry_types::AppProject;
use jiff::Timestamp;

use super::accounts::{Account, Capability, TokenRecord};
use super::clock::{Clock, SystemClock};
use super::error::AuthError;
use super::jwt::{ISSUER, Jwt, Signer, WireClaims, new_token_id};
use super::login_guard::LoginGuard;
use super::password::verify_decoy;
use super::project_token::{check_project_token, project_subject};
use super::settings::AuthSettings;

/// Longer usernames are refused before anything else, as in Argo CD: it keeps the failed-login
/// records small.
pub const MAX_USERNAME_LENGTH: usize = 32;
/// How far in the future `nbf` may be: replicas' clocks differ slightly, and a token must work
/// on all of them as soon as it is issued.
const NOT_BEFORE_LEEWAY_SECS: i64 = 5;

/// Who a verified token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A local account, through a session (`Login`) or an API token (`ApiKey`).
    Account {
        name: String,
        capability: Capability,
    },
    /// A project role, through one of its tokens.
    ProjectRole { project: String, role: String },
}

/// The RBAC subject: the account name, or `proj:<project>:<role>`.
impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Account { name, .. } => f.write_str(name),
            Self::ProjectRole { project, role } => write!(f, "proj:{project}:{role}"),
        }
    }
}

/// What a verified token says. Times are Unix seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub principal: Principal,
    pub issued_at: i64,
    pub expires_at: Option<i64>,
    /// The token's `jti`; empty only for old project tokens, which are known by `issued_at`.
    pub id: String,
}

/// Issues and verifies tokens over one snapshot of the settings; make a new one when
/// `argocd-cm` or `argocd-secret` change (the [`LoginGuard`] lives on separately).
pub struct SessionManager {
    settings: AuthSettings,
    signer: Signer,
    clock: Arc<dyn Clock>,
}

impl SessionManager {
    /// Needs `server.secretkey`, which [`super::ensure_initial_admin`] generates on first start.
    pub fn new(settings: AuthSettings) -> Result<Self, AuthError> {
        let signer = Signer::new(settings.server_key.as_ref().ok_or(AuthError::NoServerKey)?);
        Ok(Self {
            settings,
            signer,
            clock: Arc::new(SystemClock),
        })
    }

    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// A session for `username` if `password` is theirs. Whether the username exists shows
    /// neither in the error nor in the time taken (bcrypt runs either way, so call this from a
    /// blocking thread); failures count towards `guard`'s lockout, for unknown usernames too.
    pub fn login(
        &self,
        guard: &LoginGuard,
        username: &str,
        password: &str,
    ) -> Result<Jwt, AuthError> {
        self.login_from(guard, None, username, password)
    }

    /// As [`Self::login`]; failures also count towards the lockout of the client address
    /// `client` gives with its guard ([`LoginGuard::for_clients`]).
    pub fn login_from(
        &self,
        guard: &LoginGuard,
        client: Option<(&LoginGuard, &str)>,
        username: &str,
        password: &str,
    ) -> Result<Jwt, AuthError> {
        if username.len() > MAX_USERNAME_LENGTH {
            return Err(AuthError::UsernameTooLong {
                max: MAX_USERNAME_LENGTH,
            });
        }
        if password.is_empty() {
            return Err(AuthError::InvalidCredentials);
        }
        let client_attempt = client
            .map(|(clients, address)| clients.begin(address))
            .transpose()?;
        let attempt = guard.begin(username)?;
        let hash = self
            .settings
            .accounts
            .get(username)
            .and_then(|account| account.password_hash.as_ref());
        let genuine = match hash {
            Some(hash) => hash.verify(password),
            None => {
                verify_decoy(password);
                false
            }
        };
        if !genuine {
            attempt.failed();
            if let Some(client_attempt) = client_attempt {
                client_attempt.failed();
            }
            return Err(AuthError::InvalidCredentials);
        }
        // Only the password's owner learns that the account is disabled or may not log in.
        let session = self.issue_session(username)?;
        attempt.succeeded();
        if let Some(client_attempt) = client_attempt {
            client_attempt.succeeded();
        }
        Ok(session)
    }

    /// A session token for `account` (which must be enabled and have `login`), valid for
    /// `users.session.duration`.
    pub fn issue_session(&self, account: &str) -> Result<Jwt, AuthError> {
        self.usable_account(account, Capability::Login)?;
        let (jwt, _) = self.sign(
            format!("{account}:{}", Capability::Login),
            Some(self.settings.session_duration),
        )?;
        Ok(jwt)
    }

    /// An API token for `account` (which must be enabled and have `apiKey`), valid until
    /// `expires_in` has passed (a zero or absent lifetime never expires, as in Argo CD). The
    /// token is only accepted once its record is saved in the account's `tokens`, and until the
    /// record is removed.
    pub fn generate_token(
        &self,
        account: &str,
        expires_in: Option<Duration>,
    ) -> Result<(Jwt, TokenRecord), AuthError> {
        self.usable_account(account, Capability::ApiKey)?;
        let (jwt, claims) = self.sign(format!("{account}:{}", Capability::ApiKey), expires_in)?;
        let record = TokenRecord {
            id: claims.jti,
            iat: claims.iat,
            exp: claims.exp.unwrap_or(0),
        };
        Ok((jwt, record))
    }

    /// The claims of `token` if it is still valid: signed with `server.secretkey`, issued by
    /// Argo CD or ferry, within its validity period, and its account or project role still
    /// allows it (see [`AuthError`] for each refusal). `find_project` looks up AppProjects by
    /// name, for project role tokens.
    pub fn verify<'p>(
        &self,
        token: &str,
        find_project: impl FnOnce(&str) -> Option<&'p AppProject>,
    ) -> Result<Claims, AuthError> {
        let claims = self.signer.open(token)?;
        if claims.iss != ISSUER {
            return Err(AuthError::invalid_token(format!(
                "issued by {:?}, not {ISSUER:?}",
                claims.iss
            )));
        }
        let now = self.clock.now().as_second();
        if claims.exp.is_some_and(|exp| now >= exp) {
            return Err(AuthError::TokenExpired);
        }
        if claims
            .nbf
            .is_some_and(|nbf| now.saturating_add(NOT_BEFORE_LEEWAY_SECS) < nbf)
        {
            return Err(AuthError::TokenNotYetValid);
        }
        let principal = match project_subject(&claims.sub) {
            Some((project, role)) => {
                check_project_token(find_project(project), project, role, &claims)?;
                Principal::ProjectRole {
                    project: project.to_string(),
                    role: role.to_string(),
                }
            }
            None => {
                let (name, capability) = account_subject(&claims.sub)?;
                self.check_account_token(name, capability, &claims)?;
                Principal::Account {
                    name: name.to_string(),
                    capability,
                }
            }
        };
        Ok(Claims {
            principal,
            issued_at: claims.iat,
            expires_at: claims.exp,
            id: claims.jti,
        })
    }

    fn check_account_token(
        &self,
        name: &str,
        capability: Capability,
        claims: &WireClaims,
    ) -> Result<(), AuthError> {
        let account = self.usable_account(name, capability)?;
        if claims.jti.is_empty() {
            return Err(AuthError::invalid_token("the token has no id (jti)"));
        }
        if capability == Capability::ApiKey && !account.tokens.iter().any(|t| t.id == claims.jti) {
            return Err(AuthError::TokenRevoked {
                subject: name.to_string(),
                token: format!("id {}", claims.jti),
            });
        }
        let issued_at = Timestamp::from_second(claims.iat)
            .map_err(|_| AuthError::invalid_token("iat is out of range"))?;
        if account
            .password_mtime
            .is_some_and(|mtime| issued_at < mtime)
        {
            return Err(AuthError::PasswordChanged {
                account: name.to_string(),
            });
        }
        Ok(())
    }

    /// `name`'s account, if it exists, is enabled and has `capability`.
    fn usable_account(&self, name: &str, capability: Capability) -> Result<&Account, AuthError> {
        let account =
            self.settings
                .accounts
                .get(name)
                .ok_or_else(|| AuthError::UnknownAccount {
                    account: name.to_string(),
                })?;
        if !account.enabled {
            return Err(AuthError::AccountDisabled {
                account: name.to_string(),
            });
        }
        if !account.has_capability(capability) {
            return Err(AuthError::MissingCapability {
                account: name.to_string(),
                capability,
            });
        }
        Ok(account)
    }

    /// A fresh token for `subject`, issued now.
    pub(crate) fn sign(
        &self,
        subject: String,
        lifetime: Option<Duration>,
    ) -> Result<(Jwt, WireClaims), AuthError> {
        self.sign_with_id(subject, lifetime, new_token_id())
    }

    /// As [`Self::sign`], with the token id `jti` (project tokens may be given theirs).
    pub(crate) fn sign_with_id(
        &self,
        subject: String,
        lifetime: Option<Duration>,
        jti: String,
    ) -> Result<(Jwt, WireClaims), AuthError> {
        let now = self.clock.now().as_second();
        let expires_at = lifetime
            .filter(|lifetime| !lifetime.is_zero())
            .map(|lifetime| expiry(now, lifetime))
            .transpose()?;
        let claims = WireClaims {
            iss: ISSUER.to_string(),
            sub: subject,
            iat: now,
            nbf: Some(now),
            exp: expires_at,
            jti,
        };
        Ok((self.signer.sign(&claims)?, claims))
    }

    /// Any claims, signed with this manager's key.
    #[cfg(test)]
    pub(crate) fn sign_wire(&self, claims: &WireClaims) -> Result<Jwt, AuthError> {
        self.signer.sign(claims)
    }
}

/// `now + lifetime`, rounded up to the second so a short lifetime does not expire on issue.
fn expiry(now: i64, lifetime: Duration) -> Result<i64, AuthError> {
    let secs = lifetime.as_secs() + u64::from(lifetime.subsec_nanos() > 0);
    i64::try_from(secs)
        .ok()
        .and_then(|secs| now.checked_add(secs))
        .filter(|exp| Timestamp::from_second(*exp).is_ok())
        .ok_or(AuthError::LifetimeOutOfRange { secs })
}

/// The account and capability of an account token's subject.
fn account_subject(subject: &str) -> Result<(&str, Capability), AuthError> {
    let (name, capability) = match subject.rsplit_once(':') {
        None => (subject, Capability::ApiKey),
        Some((name, capability)) => (
            name,
            capability.parse().map_err(|_| {
                AuthError::invalid_token(format!("unrecognised subject {subject:?}"))
            })?,
        ),
    };
    if name.is_empty() {
        return Err(AuthError::invalid_token("the token has no subject"));
    }
    Ok((name, capability))
}

#[cfg(test)]
pub(crate) mod tests {
    use std::collections::BTreeMap;
    use std::sync::LazyLock;

    use super::super::accounts::tests::{config_map, secret};
    use super::super::clock::fake::FakeClock;
    use super::super::login_guard::LoginGuardConfig;
    use super::super::password::PasswordHash;
    use super::super::patch::SettingsPatch;
    use super::*;

    static ADMIN_HASH: LazyLock<String> = LazyLock::new(|| {
        PasswordHash::new("admin password")
            .unwrap()
            .as_str()
            .to_string()
    });
    static ALICE_HASH: LazyLock<String> = LazyLock::new(|| {
        PasswordHash::new("alice password")
            .unwrap()
            .as_str()
            .to_string()
    });

    pub(crate) const SERVER_KEY: &str = "bm90IGEgcmVhbCBrZXkgYnV0IDMyIGJ5dGVzIGxvbmc=";

    /// The data of `argocd-cm` and `argocd-secret` of an install with an admin, alice (login
    /// and API keys), a disabled bob and an API-only `ci`, whose passwords last changed
    /// 2024-06-01T10:00:00Z.
    pub(crate) struct Install {
        config_map: BTreeMap<String, String>,
        secret: BTreeMap<String, Vec<u8>>,
    }

    impl Install {
        pub(crate) fn new() -> Self {
            Self {
                config_map: config_map(&[
                    ("accounts.alice", "login, apiKey"),
                    ("accounts.bob", "login"),
                    ("accounts.bob.enabled", "false"),
                    ("accounts.ci", "apiKey"),
                ]),
                secret: secret(&[
                    ("server.secretkey", SERVER_KEY),
                    ("admin.password", ADMIN_HASH.as_str()),
                    ("admin.passwordMtime", "2024-06-01T10:00:00Z"),
                    ("accounts.alice.password", ALICE_HASH.as_str()),
                    ("accounts.alice.passwordMtime", "2024-06-01T10:00:00Z"),
                    ("accounts.bob.password", ALICE_HASH.as_str()),
                ]),
            }
        }

        pub(crate) fn settings(&self) -> AuthSettings {
            AuthSettings::from_data(&self.config_map, &self.secret).unwrap()
        }

        pub(crate) fn manager(&self, clock: &Arc<FakeClock>) -> SessionManager {
            SessionManager::new(self.settings())
                .unwrap()
                .with_clock(clock.clone())
        }

        /// Changes an account and saves it, as the API server will.
        pub(crate) fn save(&mut self, name: &str, change: impl FnOnce(&mut Account)) {
            let mut account = self.settings().accounts.get(name).unwrap().clone();
            change(&mut account);
            let patch = SettingsPatch::save_account(name, &account);
            patch.apply_to_config_map(&mut self.config_map);
            patch.apply_to_secret(&mut self.secret);
        }

        pub(crate) fn set_secret(&mut self, key: &str, value: &str) {
            self.secret
                .insert(key.to_string(), value.as_bytes().to_vec());
        }
    }

    fn no_projects(_: &str) -> Option<&'static AppProject> {
        None
    }

    #[test]
    fn a_password_login_gives_a_session_for_that_account() {
        let clock = FakeClock::new();
        let sessions = Install::new().manager(&clock);
        let guard = LoginGuard::default();
        let jwt = sessions.login(&guard, "alice", "alice password").unwrap();
        let claims = sessions.verify(jwt.as_str(), no_projects).unwrap();
        let now = clock.now().as_second();
        assert_eq!(
            claims.principal,
            Principal::Account {
                name: "alice".into(),
                capability: Capability::Login
            }
        );
        assert_eq!(claims.principal.to_string(), "alice");
        assert_eq!(claims.issued_at, now);
        assert_eq!(claims.expires_at, Some(now + 24 * 3600));
        assert_eq!(claims.id.len(), 36);

        let admin = sessions.login(&guard, "admin", "admin password").unwrap();
        assert_ne!(admin, jwt);
        assert!(sessions.verify(admin.as_str(), no_projects).is_ok());
    }

    #[test]
    fn wrong_passwords_and_unknown_users_get_the_same_answer() {
        let sessions = Install::new().manager(&FakeClock::new());
        let guard = LoginGuard::default();
        for (user, password) in [
            ("alice", "admin password"),
            ("alice", ""),
            ("nobody", "alice password"),
            ("ci", "anything at all"),
        ] {
            let err = sessions.login(&guard, user, password).unwrap_err();
            assert_eq!(err.to_string(), "invalid username or password", "{user}");
        }
        let err = sessions
            .login(&guard, &"a".repeat(33), "alice password")
            .unwrap_err();
        assert_eq!(err.to_string(), "usernames are at most 32 bytes long");
    }

    #[test]
    fn only_the_owner_learns_an_account_is_disabled() {
        let sessions = Install::new().manager(&FakeClock::new());
        let guard = LoginGuard::default();
        let err = sessions.login(&guard, "bob", "wrong password").unwrap_err();
        assert!(matches!(err, AuthError::InvalidCredentials), "{err}");
        let err = sessions.login(&guard, "bob", "alice password").unwrap_err();
        assert_eq!(err.to_string(), "account bob is disabled");
    }

    #[test]
    fn login_failures_lock_a_username_out_whether_it_exists_or_not() {
        let clock = FakeClock::new();
        let sessions = Install::new().manager(&clock);
        let guard = LoginGuard::with_clock(LoginGuardConfig::default(), clock.clone());
        for user in ["alice", "nobody"] {
            for _ in 0..5 {
                assert!(matches!(
                    sessions.login(&guard, user, "guess"),
                    Err(AuthError::InvalidCredentials)
                ));
            }
            let err = sessions.login(&guard, user, "guess").unwrap_err();
            assert_eq!(
                err.to_string(),
                "too many failed login attempts for this username: try again in 300 s"
            );
        }
        // Even the right password waits for the lockout to end; other users are not affected.
        assert!(matches!(
            sessions.login(&guard, "alice", "alice password"),
            Err(AuthError::TooManyFailedLogins { .. })
        ));
        assert!(sessions.login(&guard, "admin", "admin password").is_ok());
        clock.advance(Duration::from_secs(300));
        assert!(sessions.login(&guard, "alice", "alice password").is_ok());
    }

    #[test]
    fn sessions_need_an_enabled_account_with_login() {
        let sessions = Install::new().manager(&FakeClock::new());
        assert!(sessions.issue_session("alice").is_ok());
        let err = sessions.issue_session("ci").unwrap_err();
        assert_eq!(
            err.to_string(),
            "account ci does not have the login capability"
        );
        let err = sessions.issue_session("bob").unwrap_err();
        assert!(matches!(err, AuthError::AccountDisabled { .. }), "{err}");
        let err = sessions.issue_session("nobody").unwrap_err();
        assert_eq!(err.to_string(), "account nobody does not exist");
    }

    #[test]
    fn sessions_expire_and_are_not_valid_before_their_time() {
        let install = Install::new();
        let clock = FakeClock::new();
        let sessions = install.manager(&clock);
        let jwt = sessions.issue_session("admin").unwrap();
        clock.advance(Duration::from_secs(24 * 3600 - 1));
        assert!(sessions.verify(jwt.as_str(), no_projects).is_ok());
        clock.advance(Duration::from_secs(1));
        assert!(matches!(
            sessions.verify(jwt.as_str(), no_projects),
            Err(AuthError::TokenExpired)
        ));

        // Issued by a replica whose clock runs ahead: an hour is too much, seconds are not.
        let here = install.manager(&FakeClock::new());
        for (ahead, accepted) in [(3600, false), (NOT_BEFORE_LEEWAY_SECS as u64, true)] {
            let clock = FakeClock::new();
            clock.advance(Duration::from_secs(ahead));
            let jwt = install.manager(&clock).issue_session("admin").unwrap();
            let verified = here.verify(jwt.as_str(), no_projects);
            assert_eq!(verified.is_ok(), accepted, "{ahead} s ahead: {verified:?}");
            if !accepted {
                assert!(matches!(verified, Err(AuthError::TokenNotYetValid)));
            }
        }
    }

    #[test]
    fn sessions_last_users_session_duration() {
        let mut install = Install::new();
        install
            .config_map
            .insert("users.session.duration".into(), "10m".into());
        let clock = FakeClock::new();
        let sessions = install.manager(&clock);
        let jwt = sessions.issue_session("admin").unwrap();
        let claims = sessions.verify(jwt.as_str(), no_projects).unwrap();
        assert_eq!(claims.expires_at, Some(clock.now().as_second() + 600));
    }

    #[test]
    fn changing_the_password_revokes_earlier_tokens() {
        let mut install = Install::new();
        let clock = FakeClock::new();
        let old = install.manager(&clock).issue_session("alice").unwrap();
        clock.advance(Duration::from_secs(60));

        let policy = install.settings().password_policy;
        let now = clock.now();
        install.save("alice", |alice| {
            alice.set_password("a new password", &policy, now).unwrap();
        });
        let sessions = install.manager(&clock);
        let err = sessions.verify(old.as_str(), no_projects).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the password of account alice has changed since the token was issued"
        );
        // A session issued in the very second of the change is valid.
        let new = sessions.issue_session("alice").unwrap();
        assert!(sessions.verify(new.as_str(), no_projects).is_ok());
        let guard = LoginGuard::default();
        assert!(sessions.login(&guard, "alice", "alice password").is_err());
        assert!(sessions.login(&guard, "alice", "a new password").is_ok());
    }

    #[test]
    fn disabling_an_account_or_removing_a_capability_stops_its_tokens() {
        let mut install = Install::new();
        let clock = FakeClock::new();
        let session = install.manager(&clock).issue_session("alice").unwrap();
        let (api_token, record) = install
            .manager(&clock)
            .generate_token("alice", None)
            .unwrap();
        install.save("alice", |alice| alice.tokens.push(record));
        let sessions = install.manager(&clock);
        assert!(sessions.verify(session.as_str(), no_projects).is_ok());
        assert!(sessions.verify(api_token.as_str(), no_projects).is_ok());

        install.save("alice", |alice| {
            alice.capabilities = vec![Capability::ApiKey]
        });
        let sessions = install.manager(&clock);
        let err = sessions.verify(session.as_str(), no_projects).unwrap_err();
        assert!(matches!(err, AuthError::MissingCapability { .. }), "{err}");
        assert!(sessions.verify(api_token.as_str(), no_projects).is_ok());

        install.save("alice", |alice| alice.enabled = false);
        let err = install
            .manager(&clock)
            .verify(api_token.as_str(), no_projects)
            .unwrap_err();
        assert_eq!(err.to_string(), "account alice is disabled");
    }

    #[test]
    fn api_tokens_are_valid_while_their_record_is_listed() {
        let mut install = Install::new();
        let clock = FakeClock::new();
        let (jwt, record) = install
            .manager(&clock)
            .generate_token("ci", Some(Duration::from_secs(3600)))
            .unwrap();
        let now = clock.now().as_second();
        assert_eq!((record.iat, record.exp), (now, now + 3600));

        // Not saved yet: not valid yet.
        let err = install
            .manager(&clock)
            .verify(jwt.as_str(), no_projects)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "the token (id {}) of ci is no longer listed: it was revoked",
                record.id
            )
        );

        install.save("ci", |ci| ci.tokens.push(record.clone()));
        let claims = install
            .manager(&clock)
            .verify(jwt.as_str(), no_projects)
            .unwrap();
        assert_eq!(
            claims.principal,
            Principal::Account {
                name: "ci".into(),
                capability: Capability::ApiKey
            }
        );
        assert_eq!(claims.id, record.id);

        install.save("ci", |ci| ci.tokens.clear());
        assert!(matches!(
            install.manager(&clock).verify(jwt.as_str(), no_projects),
            Err(AuthError::TokenRevoked { .. })
        ));
    }

    #[test]
    fn api_token_lifetimes() {
        let mut install = Install::new();
        let clock = FakeClock::new();
        let sessions = install.manager(&clock);
        let (_, forever) = sessions.generate_token("alice", None).unwrap();
        assert_eq!(forever.exp, 0);
        let (_, zero) = sessions
            .generate_token("alice", Some(Duration::ZERO))
            .unwrap();
        assert_eq!(zero.exp, 0);
        let (_, short) = sessions
            .generate_token("alice", Some(Duration::from_millis(1)))
            .unwrap();
        assert_eq!(short.exp, clock.now().as_second() + 1);
        let err = sessions
            .generate_token("alice", Some(Duration::from_secs(u64::MAX)))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("a token lifetime of {} s is out of range", u64::MAX)
        );

        let (jwt, record) = sessions
            .generate_token("ci", Some(Duration::from_secs(60)))
            .unwrap();
        install.save("ci", |ci| ci.tokens.push(record));
        let sessions = install.manager(&clock);
        assert!(sessions.verify(jwt.as_str(), no_projects).is_ok());
        clock.advance(Duration::from_secs(60));
        assert!(matches!(
            sessions.verify(jwt.as_str(), no_projects),
            Err(AuthError::TokenExpired)
        ));
    }

    #[test]
    fn api_tokens_need_an_enabled_account_with_api_key() {
        let sessions = Install::new().manager(&FakeClock::new());
        let err = sessions.generate_token("admin", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "account admin does not have the apiKey capability"
        );
        let err = sessions.generate_token("bob", None).unwrap_err();
        assert!(matches!(err, AuthError::AccountDisabled { .. }), "{err}");
    }

    #[test]
    fn tokens_from_another_key_issuer_or_subject_are_refused() {
        let clock = FakeClock::new();
        let mut install = Install::new();
        let sessions = install.manager(&clock);
        install.set_secret("server.secretkey", "another key");
        let foreign = install.manager(&clock).issue_session("admin").unwrap();
        assert!(matches!(
            sessions.verify(foreign.as_str(), no_projects),
            Err(AuthError::BadSignature)
        ));

        let now = clock.now().as_second();
        let wire = |iss: &str, sub: &str, jti: &str| WireClaims {
            iss: iss.into(),
            sub: sub.into(),
            iat: now,
            nbf: Some(now),
            exp: None,
            jti: jti.into(),
        };
        let cases = [
            (
                wire("dex", "admin:login", "x"),
                "invalid token: issued by \"dex\", not \"argocd\"",
            ),
            (
                wire(ISSUER, "admin:sudo", "x"),
                "invalid token: unrecognised subject \"admin:sudo\"",
            ),
            (
                wire(ISSUER, "", "x"),
                "invalid token: the token has no subject",
            ),
            (
                wire(ISSUER, "admin:login", ""),
                "invalid token: the token has no id (jti)",
            ),
        ];
        for (claims, expected) in cases {
            let jwt = sessions.sign_wire(&claims).unwrap();
            let err = sessions.verify(jwt.as_str(), no_projects).unwrap_err();
            assert_eq!(err.to_string(), expected);
        }

        // A bare account name is an API token, as older Argo CD versions wrote them.
        let legacy = sessions.sign_wire(&wire(ISSUER, "ci", "old-id")).unwrap();
        let err = sessions.verify(legacy.as_str(), no_projects).unwrap_err();
        assert!(matches!(err, AuthError::TokenRevoked { .. }), "{err}");
        let mut install = Install::new();
        install.set_secret(
            "accounts.ci.tokens",
            r#"[{"id":"old-id","iat":1700000000}]"#,
        );
        let claims = install
            .manager(&clock)
            .verify(legacy.as_str(), no_projects)
            .unwrap();
        assert_eq!(claims.principal.to_string(), "ci");
    }

    #[test]
    fn a_manager_needs_the_server_key() {
        let settings = AuthSettings::from_data(&BTreeMap::new(), &BTreeMap::new()).unwrap();
        let err = SessionManager::new(settings).err().unwrap();
        assert!(matches!(err, AuthError::NoServerKey), "{err}");
    }
}
