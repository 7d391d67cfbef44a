//! A browser login in progress, kept by the browser itself between `/auth/login` and
//! `/auth/callback` in the `argocd.oauthstate` cookie (Argo CD's name): the OAuth2 state, the
//! nonce, the PKCE verifier and where to go afterwards, signed with `server.secretkey` so it
//! can be neither forged nor altered, and valid for five minutes. The server keeps nothing, so
//! any replica can finish a login another one started.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The cookie a login in progress is kept in.
pub const STATE_COOKIE: &str = "argocd.oauthstate";
/// How long a login may take, in seconds (Argo CD's too).
pub const STATE_MAX_AGE_SECS: i64 = 300;
/// Separates these signatures from anything else signed with the same key.
const CONTEXT: &[u8] = b"ferry oauth state\n";

/// Deliberately not `Debug`: it holds the PKCE verifier.
#[derive(Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub return_url: String,
    pub expires_at: i64,
}

/// Why a callback's login state was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("the login state cookie is malformed or was not signed by this server")]
    Forged,
    #[error("the login took too long; start again")]
    Expired,
    #[error("the state does not match this browser's login")]
    Mismatch,
}

impl LoginState {
    /// The cookie value: the state as base64url JSON, a dot, and its HMAC-SHA256.
    pub fn seal(&self, key: &[u8]) -> String {
        let payload =
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).expect("plain strings serialize"));
        let signature = URL_SAFE_NO_PAD.encode(mac(key, &payload).finalize().into_bytes());
        format!("{payload}.{signature}")
    }

    /// The state a cookie holds, if this server signed it, it has not expired at `now` (Unix
    /// seconds), and its state is `state`, the one the provider sent back.
    pub fn open(cookie: &str, key: &[u8], now: i64, state: &str) -> Result<Self, StateError> {
        let (payload, signature) = cookie.split_once('.').ok_or(StateError::Forged)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| StateError::Forged)?;
        mac(key, payload)
            .verify_slice(&signature)
            .map_err(|_| StateError::Forged)?;
        let json = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| StateError::Forged)?;
        let login: Self = serde_json::from_slice(&json).map_err(|_| StateError::Forged)?;
        if now >= login.expires_at {
            return Err(StateError::Expired);
        }
        // Compared as digests, so the time taken says nothing about how much matched.
        if Sha256::digest(&login.state) != Sha256::digest(state) {
            return Err(StateError::Mismatch);
        }
        Ok(login)
    }
}

fn mac(key: &[u8], payload: &str) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(CONTEXT);
    mac.update(payload.as_bytes());
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> LoginState {
        LoginState {
            state: "st4te".into(),
            nonce: "n0nce".into(),
            pkce_verifier: "v3rifier".into(),
            return_url: "/applications".into(),
            expires_at: 1_000,
        }
    }

    #[test]
    fn a_sealed_state_opens_with_the_same_key_before_it_expires() {
        let cookie = login().seal(b"key");
        assert!(
            cookie
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        );
        let opened = LoginState::open(&cookie, b"key", 999, "st4te").unwrap();
        assert_eq!(opened.nonce, "n0nce");
        assert_eq!(opened.pkce_verifier, "v3rifier");
        assert_eq!(opened.return_url, "/applications");
        assert_eq!(
            LoginState::open(&cookie, b"key", 1_000, "st4te").err(),
            Some(StateError::Expired)
        );
        assert_eq!(
            LoginState::open(&cookie, b"key", 999, "other").err(),
            Some(StateError::Mismatch)
        );
    }

    #[test]
    fn altered_or_foreign_states_are_refused() {
        let cookie = login().seal(b"key");
        assert_eq!(
            LoginState::open(&cookie, b"another key", 999, "st4te").err(),
            Some(StateError::Forged)
        );
        // A longer-lived state, re-encoded with the old signature.
        let (_, signature) = cookie.split_once('.').unwrap();
        let longer = LoginState {
            expires_at: i64::MAX,
            ..login()
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&longer).unwrap());
        for forged in [
            format!("{payload}.{signature}"),
            cookie.replace('.', ""),
            format!("{cookie}x"),
            String::new(),
        ] {
            assert_eq!(
                LoginState::open(&forged, b"key", 999, "st4te").err(),
                Some(StateError::Forged),
                "{forged}"
            );
        }
    }
}
