//! Passwords: bcrypt hashes as Argo CD stores them, and the pattern new passwords must match.

use std::fmt;

use regex::Regex;

use super::error::AuthError;

/// The bcrypt cost Argo CD hashes with (Go's `bcrypt.DefaultCost`); hashes of any cost verify.
pub const BCRYPT_COST: u32 = 10;
/// bcrypt only reads this much of a password.
const BCRYPT_MAX_PASSWORD_BYTES: usize = 72;
/// The `argocd-cm` key holding the regular expression new passwords must match.
pub const PASSWORD_PATTERN_KEY: &str = "passwordPattern";
/// Argo CD's pattern when `passwordPattern` is not set.
pub const DEFAULT_PASSWORD_PATTERN: &str = "^.{8,32}$";

/// A bcrypt hash (`$2a$10$...`). Debug output never shows it: a leaked hash can be cracked
/// offline.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Hashes `password` with a fresh salt. Passwords over bcrypt's 72-byte limit are refused
    /// rather than silently truncated.
    pub fn new(password: &str) -> Result<Self, AuthError> {
        if password.len() > BCRYPT_MAX_PASSWORD_BYTES {
            return Err(AuthError::PasswordRefused {
                reason: format!(
                    "passwords are at most {BCRYPT_MAX_PASSWORD_BYTES} bytes long (bcrypt's limit)"
                ),
            });
        }
        // Up to 72 bytes, `hash` only drops C's string terminator, as Go's bcrypt does, where
        // `non_truncating_hash` would refuse a 72-byte password.
        bcrypt::hash(password, BCRYPT_COST)
            .map(Self)
            .map_err(|err| AuthError::Hashing {
                reason: err.to_string(),
            })
    }

    /// A hash as `argocd-secret` stores it.
    pub(crate) fn from_stored(hash: String) -> Self {
        Self(hash)
    }

    /// Whether `password` is the one hashed; a malformed hash matches nothing. bcrypt compares
    /// the digests in constant time.
    pub fn verify(&self, password: &str) -> bool {
        bcrypt::verify(password, &self.0).unwrap_or(false)
    }

    /// The hash as `argocd-secret` stores it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(<redacted>)")
    }
}

/// A cost-10 hash of a random password that was thrown away, verified against when a login
/// names an unknown user or an account without a password, so that such logins take as long as
/// real ones. Its result is ignored.
const DECOY: &str = "$2b$10$so2wjUcRid6Np7yD7aDdnOLOC47gbUhnJgRVrWyYPNLIXZfTphZji";

/// Spends the time a password verification takes, for a login that cannot succeed.
pub(crate) fn verify_decoy(password: &str) {
    let _ = bcrypt::verify(password, DECOY);
}

/// The rule new passwords must follow: `passwordPattern` of `argocd-cm`, by default 8 to 32
/// characters.
#[derive(Clone, Debug)]
pub struct PasswordPolicy {
    pattern: Regex,
}

impl PasswordPolicy {
    pub fn new(pattern: &str) -> Result<Self, regex::Error> {
        Ok(Self {
            pattern: Regex::new(pattern)?,
        })
    }

    pub fn check(&self, password: &str) -> Result<(), AuthError> {
        if self.pattern.is_match(password) {
            Ok(())
        } else {
            Err(AuthError::PasswordRefused {
                reason: format!(
                    "it does not match the password pattern {} (passwordPattern in argocd-cm)",
                    self.pattern.as_str()
                ),
            })
        }
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::new(DEFAULT_PASSWORD_PATTERN).expect("the default pattern is valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_their_password_only() {
        let hash = PasswordHash::new("correct horse").unwrap();
        assert!(hash.as_str().starts_with("$2b$10$"), "{}", hash.as_str());
        assert!(hash.verify("correct horse"));
        assert!(!hash.verify("correct horse "));
        assert!(!hash.verify(""));
        // Salted: the same password hashes differently each time.
        assert_ne!(PasswordHash::new("correct horse").unwrap(), hash);
    }

    #[test]
    fn hashes_written_by_argo_cd_verify() {
        // `admin.password` as Argo CD (Go's x/crypto/bcrypt) writes it, for "password".
        let argo = PasswordHash::from_stored(
            "$2a$10$rRyBsGSHK6.uc8fntPwVIuLVHgsAhAX7TcdrqW/RADU0uh7CaChLa".to_string(),
        );
        assert!(argo.verify("password"));
        assert!(!argo.verify("Password"));
        assert!(!PasswordHash::from_stored("not a hash".to_string()).verify("not a hash"));
    }

    #[test]
    fn overlong_passwords_are_refused_not_truncated() {
        let err = PasswordHash::new(&"a".repeat(73)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "password refused: passwords are at most 72 bytes long (bcrypt's limit)"
        );
        let longest = "a".repeat(72);
        assert!(PasswordHash::new(&longest).unwrap().verify(&longest));
    }

    #[test]
    fn the_decoy_costs_what_a_real_hash_costs() {
        let parts: bcrypt::HashParts = DECOY.parse().unwrap();
        assert_eq!(parts.get_cost(), BCRYPT_COST);
    }

    #[test]
    fn debug_never_shows_the_hash() {
        let hash = PasswordHash::new("s3cret-password").unwrap();
        let debug = format!("{hash:?}");
        assert_eq!(debug, "PasswordHash(<redacted>)");
        assert!(!debug.contains("$2b$"));
    }

    #[test]
    fn the_default_policy_is_argo_cds_8_to_32_characters() {
        let policy = PasswordPolicy::default();
        assert!(policy.check("12345678").is_ok());
        assert!(policy.check(&"é".repeat(32)).is_ok());
        assert!(policy.check(&"x".repeat(33)).is_err());
        let err = policy.check("1234567").unwrap_err();
        assert_eq!(
            err.to_string(),
            "password refused: it does not match the password pattern ^.{8,32}$ \
             (passwordPattern in argocd-cm)"
        );
        let strict = PasswordPolicy::new("^(?=.*[0-9]).{12,}$");
        assert!(strict.is_err(), "look-arounds are not RE2 either");
        let digits = PasswordPolicy::new("^.*[0-9].*$").unwrap();
        assert!(digits.check("abc1").is_ok());
        assert!(digits.check("abcd").is_err());
    }
}
