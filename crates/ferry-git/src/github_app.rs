//! GitHub App credentials (a repository Secret's `githubAppID`, `githubAppInstallationID`,
//! `githubAppPrivateKey`, `githubAppEnterpriseBaseUrl`): a JWT signed with the app's key buys
//! an installation access token from the GitHub API, which Git then sends as the password of
//! `x-access-token`. Tokens are kept per app, installation, key and API until a minute before
//! they expire, as Argo CD's ghinstallation transport keeps them.

use std::collections::HashMap;
use std::fmt;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};

use crate::GitError;

/// The API of github.com; GitHub Enterprise names its own (`https://ghe.example.com/api/v3`).
pub const DEFAULT_API: &str = "https://api.github.com";

/// A token this close to its expiry is replaced.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(60);

/// A GitHub App installation. `Debug` never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct GithubApp {
    pub app_id: i64,
    pub installation_id: i64,
    /// The app's private key (PEM, RSA).
    pub private_key: String,
    /// The API base URL; `None` for github.com.
    pub enterprise_base_url: Option<String>,
}

impl fmt::Debug for GithubApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubApp")
            .field("app_id", &self.app_id)
            .field("installation_id", &self.installation_id)
            .field("private_key", &"<redacted>")
            .field("enterprise_base_url", &self.enterprise_base_url)
            .finish()
    }
}

#[derive(serde::Serialize)]
struct Claims {
    iat: i64,
    exp: i64,
    iss: String,
}

#[derive(serde::Deserialize)]
struct AccessToken {
    token: String,
    expires_at: jiff::Timestamp,
}

struct Cached {
    token: String,
    expires_at: jiff::Timestamp,
}

static TOKENS: LazyLock<Mutex<HashMap<[u8; 32], Cached>>> = LazyLock::new(Mutex::default);

impl GithubApp {
    /// The API base URL, without a trailing slash.
    pub fn api(&self) -> String {
        self.enterprise_base_url
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .unwrap_or(DEFAULT_API)
            .trim_end_matches('/')
            .to_owned()
    }

    /// An installation access token: the cached one while it is valid for more than a minute,
    /// else a new one from `client` (blocking; the caller's proxy and TLS settings).
    pub(crate) fn token(
        &self,
        client: &reqwest::blocking::Client,
        repo: &str,
    ) -> Result<String, GitError> {
        let key = self.cache_key();
        let now = jiff::Timestamp::now();
        let fresh_until = now + jiff::SignedDuration::try_from(REFRESH_BEFORE_EXPIRY).unwrap();
        if let Some(cached) = TOKENS.lock().expect("token cache").get(&key)
            && cached.expires_at > fresh_until
        {
            return Ok(cached.token.clone());
        }
        let fetched = self
            .fetch(client, now)
            .map_err(|message| GitError::AuthFailed {
                url: repo.to_owned(),
                message: format!(
                    "GitHub App {} installation {}: {message}",
                    self.app_id, self.installation_id
                ),
            })?;
        let token = fetched.token.clone();
        TOKENS.lock().expect("token cache").insert(
            key,
            Cached {
                token: fetched.token,
                expires_at: fetched.expires_at,
            },
        );
        Ok(token)
    }

    /// `POST {api}/app/installations/{id}/access_tokens` with the app's JWT.
    fn fetch(
        &self,
        client: &reqwest::blocking::Client,
        now: jiff::Timestamp,
    ) -> Result<AccessToken, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(self.private_key.as_bytes())
            .map_err(|e| format!("githubAppPrivateKey is no RSA private key in PEM: {e}"))?;
        // Backdated a minute against clock drift; GitHub accepts at most ten minutes ahead.
        let claims = Claims {
            iat: now.as_second() - 60,
            exp: now.as_second() + 9 * 60,
            iss: self.app_id.to_string(),
        };
        let jwt = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &key,
        )
        .map_err(|e| format!("signing the app's JWT: {e}"))?;
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            self.api(),
            self.installation_id
        );
        let response = client
            .post(&url)
            .bearer_auth(jwt)
            .header(reqwest::header::ACCEPT, "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28")
            .send()
            .map_err(|e| format!("requesting an installation token from {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            let body = response.text().unwrap_or_default();
            let body: String = body.chars().take(200).collect();
            return Err(format!("{url} answered {status}: {body}"));
        }
        response
            .json()
            .map_err(|e| format!("reading the installation token from {url}: {e}"))
    }

    fn cache_key(&self) -> [u8; 32] {
        let mut hash = Sha256::new();
        for part in [
            self.private_key.as_str(),
            &self.app_id.to_string(),
            &self.installation_id.to_string(),
            &self.api(),
        ] {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        hash.finalize().into()
    }
}
