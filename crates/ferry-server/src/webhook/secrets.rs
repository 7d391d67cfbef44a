//! The webhook secrets of Argo CD's `argocd-secret` Secret.

use std::collections::BTreeMap;
use std::fmt;

use super::provider::Provider;

/// Each provider's secret (Bitbucket Cloud's hook UUID), when configured. Debug output shows
/// which are set, never their values.
#[derive(Clone, Default)]
pub struct WebhookSecrets {
    github: Option<Vec<u8>>,
    gitlab: Option<Vec<u8>>,
    bitbucket_uuid: Option<Vec<u8>>,
    bitbucket_server: Option<Vec<u8>>,
    gogs: Option<Vec<u8>>,
}

impl WebhookSecrets {
    /// From the data of `argocd-secret` (`webhook.github.secret`, `webhook.gitlab.secret`,
    /// `webhook.bitbucket.uuid`, `webhook.bitbucketserver.secret`, `webhook.gogs.secret`);
    /// empty values count as not configured. Values are used byte for byte, as providers sign
    /// with exactly what was typed into them.
    pub fn from_secret_data(data: &BTreeMap<String, Vec<u8>>) -> Self {
        let value = |provider: Provider| {
            data.get(provider.secret_key())
                .filter(|value| !value.is_empty())
                .cloned()
        };
        Self {
            github: value(Provider::GitHub),
            gitlab: value(Provider::GitLab),
            bitbucket_uuid: value(Provider::BitbucketCloud),
            bitbucket_server: value(Provider::BitbucketServer),
            gogs: value(Provider::Gogs),
        }
    }

    /// Whether deliveries from `provider` can be accepted.
    pub fn is_configured(&self, provider: Provider) -> bool {
        self.get(provider).is_some()
    }

    pub(crate) fn get(&self, provider: Provider) -> Option<&[u8]> {
        match provider {
            Provider::GitHub => &self.github,
            Provider::GitLab => &self.gitlab,
            Provider::BitbucketCloud => &self.bitbucket_uuid,
            Provider::BitbucketServer => &self.bitbucket_server,
            Provider::Gitea | Provider::Gogs => &self.gogs,
        }
        .as_deref()
    }
}

impl fmt::Debug for WebhookSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |value: &Option<Vec<u8>>| if value.is_some() { "<set>" } else { "<unset>" };
        f.debug_struct("WebhookSecrets")
            .field("github", &set(&self.github))
            .field("gitlab", &set(&self.gitlab))
            .field("bitbucket_uuid", &set(&self.bitbucket_uuid))
            .field("bitbucket_server", &set(&self.bitbucket_server))
            .field("gogs", &set(&self.gogs))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_come_from_argo_cd_keys_and_never_show() {
        let data = BTreeMap::from([
            ("webhook.github.secret".to_string(), b"gh-s3cret".to_vec()),
            ("webhook.gitlab.secret".to_string(), Vec::new()),
            ("webhook.gogs.secret".to_string(), b"gogs-s3cret".to_vec()),
            ("admin.password".to_string(), b"not a webhook".to_vec()),
        ]);
        let secrets = WebhookSecrets::from_secret_data(&data);
        assert_eq!(secrets.get(Provider::GitHub), Some(&b"gh-s3cret"[..]));
        assert!(!secrets.is_configured(Provider::GitLab));
        assert!(!secrets.is_configured(Provider::BitbucketCloud));
        assert!(!secrets.is_configured(Provider::BitbucketServer));
        assert_eq!(secrets.get(Provider::Gitea), Some(&b"gogs-s3cret"[..]));
        assert_eq!(secrets.get(Provider::Gogs), Some(&b"gogs-s3cret"[..]));
        let debug = format!("{secrets:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("github: \"<set>\""), "{debug}");
    }
}
