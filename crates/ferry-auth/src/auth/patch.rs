//! What to write back to `argocd-cm` and `argocd-secret`: each key set to a value or removed,
//! as JSON merge patches for the API server or applied to data in memory.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Map, Value, json};

use super::accounts::{ADMIN, Account, AccountKeys};

/// Changes to the settings. Debug output shows which `argocd-secret` keys change, never their
/// values.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SettingsPatch {
    config_map: BTreeMap<String, Option<String>>,
    secret: BTreeMap<String, Option<Vec<u8>>>,
}

impl SettingsPatch {
    /// Stores `account` under `name` as Argo CD does: a value equal to its default (enabled,
    /// no tokens, no capabilities) removes the key, so saving an unchanged account changes
    /// nothing.
    pub fn save_account(name: &str, account: &Account) -> Self {
        let keys = AccountKeys::of(name);
        let mut patch = Self::default();
        patch.set_secret(
            &keys.password,
            account
                .password_hash
                .as_ref()
                .map(|hash| hash.as_str().as_bytes().to_vec()),
        );
        patch.set_secret(
            &keys.password_mtime,
            account
                .password_mtime
                .map(|mtime| mtime.to_string().into_bytes()),
        );
        let tokens = (!account.tokens.is_empty())
            .then(|| serde_json::to_vec(&account.tokens).expect("token records serialize to JSON"));
        patch.set_secret(&keys.tokens, tokens);
        patch.set_config(
            &keys.enabled,
            (!account.enabled).then(|| "false".to_string()),
        );
        match &keys.capabilities {
            Some(key) => {
                let capabilities: Vec<&str> =
                    account.capabilities.iter().map(|c| c.as_str()).collect();
                patch.set_config(
                    key,
                    Some(capabilities.join(",")).filter(|list| !list.is_empty()),
                );
            }
            // `accounts.admin.enabled` would override `admin.enabled`; one flag is enough.
            None => patch.set_config(&format!("accounts.{ADMIN}.enabled"), None),
        }
        patch
    }

    pub(crate) fn set_secret(&mut self, key: &str, value: Option<Vec<u8>>) {
        self.secret.insert(key.to_string(), value);
    }

    pub(crate) fn set_config(&mut self, key: &str, value: Option<String>) {
        self.config_map.insert(key.to_string(), value);
    }

    pub fn is_empty(&self) -> bool {
        self.config_map.is_empty() && self.secret.is_empty()
    }

    /// The `argocd-secret` keys this patch sets (rather than removes).
    pub fn secret_keys_set(&self) -> impl Iterator<Item = &str> {
        self.secret
            .iter()
            .filter(|(_, value)| value.is_some())
            .map(|(key, _)| key.as_str())
    }

    /// A JSON merge patch for `argocd-cm`, if anything changes there.
    pub fn config_map_merge_patch(&self) -> Option<Value> {
        let data: Map<String, Value> = self
            .config_map
            .iter()
            .map(|(key, value)| {
                (
                    key.clone(),
                    value.clone().map_or(Value::Null, Value::String),
                )
            })
            .collect();
        (!data.is_empty()).then(|| json!({ "data": data }))
    }

    /// A JSON merge patch for `argocd-secret`, if anything changes there (values base64-encoded,
    /// as `data` holds them).
    pub fn secret_merge_patch(&self) -> Option<Value> {
        let data: Map<String, Value> = self
            .secret
            .iter()
            .map(|(key, value)| {
                let value = value
                    .as_ref()
                    .map_or(Value::Null, |bytes| Value::String(STANDARD.encode(bytes)));
                (key.clone(), value)
            })
            .collect();
        (!data.is_empty()).then(|| json!({ "data": data }))
    }

    pub fn apply_to_config_map(&self, data: &mut BTreeMap<String, String>) {
        apply(&self.config_map, data);
    }

    pub fn apply_to_secret(&self, data: &mut BTreeMap<String, Vec<u8>>) {
        apply(&self.secret, data);
    }
}

fn apply<V: Clone>(changes: &BTreeMap<String, Option<V>>, data: &mut BTreeMap<String, V>) {
    for (key, value) in changes {
        match value {
            Some(value) => data.insert(key.clone(), value.clone()),
            None => data.remove(key),
        };
    }
}

impl fmt::Debug for SettingsPatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secret: BTreeMap<&str, &str> = self
            .secret
            .iter()
            .map(|(key, value)| {
                let change = if value.is_some() { "<set>" } else { "<remove>" };
                (key.as_str(), change)
            })
            .collect();
        f.debug_struct("SettingsPatch")
            .field("config_map", &self.config_map)
            .field("secret", &secret)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;

    use super::super::accounts::tests::{config_map, secret};
    use super::super::accounts::{Accounts, Capability, TokenRecord};
    use super::super::password::PasswordPolicy;
    use super::*;

    #[test]
    fn saved_accounts_read_back_the_same() {
        let mut cm = config_map(&[
            ("accounts.alice", "apiKey, login"),
            ("accounts.ci", "apiKey"),
            ("url", "https://argocd.example.com"),
        ]);
        let mut data = secret(&[("server.secretkey", "c2VjcmV0")]);
        let accounts = Accounts::from_data(&cm, &data).unwrap();

        let mut alice = accounts.get("alice").unwrap().clone();
        let now: Timestamp = "2024-06-01T12:00:00Z".parse().unwrap();
        alice
            .set_password("alice's password", &PasswordPolicy::default(), now)
            .unwrap();
        alice.enabled = false;
        alice.tokens.push(TokenRecord {
            id: "t-1".into(),
            iat: now.as_second(),
            exp: 0,
        });
        let mut admin = accounts.get(ADMIN).unwrap().clone();
        admin.enabled = false;

        for (name, account) in [("alice", &alice), (ADMIN, &admin)] {
            let patch = SettingsPatch::save_account(name, account);
            patch.apply_to_config_map(&mut cm);
            patch.apply_to_secret(&mut data);
        }
        assert_eq!(cm["accounts.alice"], "apiKey,login");
        assert_eq!(cm["accounts.alice.enabled"], "false");
        assert_eq!(cm["admin.enabled"], "false");
        assert_eq!(
            data["accounts.alice.passwordMtime"],
            b"2024-06-01T12:00:00Z"
        );
        assert_eq!(
            data["accounts.alice.tokens"],
            br#"[{"id":"t-1","iat":1717243200}]"#
        );
        assert_eq!(data["server.secretkey"], b"c2VjcmV0", "other keys stay");

        let reread = Accounts::from_data(&cm, &data).unwrap();
        assert_eq!(reread.get("alice"), Some(&alice));
        assert_eq!(reread.get(ADMIN), Some(&admin));
        assert_eq!(reread.get("ci"), accounts.get("ci"));
    }

    #[test]
    fn default_values_remove_their_keys() {
        let cm = config_map(&[
            ("accounts.alice", "login"),
            ("accounts.alice.enabled", "true"),
            ("accounts.admin.enabled", "true"),
        ]);
        let data = secret(&[("accounts.alice.tokens", "[]")]);
        let accounts = Accounts::from_data(&cm, &data).unwrap();
        let mut alice = accounts.get("alice").unwrap().clone();
        alice.capabilities.retain(|c| *c != Capability::Login);
        let patch = SettingsPatch::save_account("alice", &alice);
        assert_eq!(
            patch.config_map_merge_patch(),
            Some(json!({"data": {"accounts.alice": null, "accounts.alice.enabled": null}}))
        );
        assert_eq!(
            patch.secret_merge_patch(),
            Some(json!({"data": {
                "accounts.alice.password": null,
                "accounts.alice.passwordMtime": null,
                "accounts.alice.tokens": null,
            }}))
        );
        assert_eq!(patch.secret_keys_set().count(), 0);

        let admin = SettingsPatch::save_account(ADMIN, accounts.get(ADMIN).unwrap());
        assert_eq!(
            admin.config_map_merge_patch(),
            Some(json!({"data": {"accounts.admin.enabled": null, "admin.enabled": null}}))
        );
    }

    #[test]
    fn secret_values_are_base64_in_patches_and_hidden_in_debug() {
        let mut patch = SettingsPatch::default();
        assert!(patch.is_empty());
        assert_eq!(patch.secret_merge_patch(), None);
        patch.set_secret("server.secretkey", Some(b"top-secret-key".to_vec()));
        patch.set_secret("admin.tokens", None);
        patch.set_config("admin.enabled", Some("false".into()));
        assert!(!patch.is_empty());
        assert_eq!(
            patch.secret_merge_patch(),
            Some(json!({"data": {
                "admin.tokens": null,
                "server.secretkey": STANDARD.encode("top-secret-key"),
            }}))
        );
        assert_eq!(
            patch.secret_keys_set().collect::<Vec<_>>(),
            ["server.secretkey"]
        );
        let debug = format!("{patch:?}");
        assert!(!debug.contains("top-secret"), "{debug}");
        assert!(
            !debug.contains(&STANDARD.encode("top-secret-key")),
            "{debug}"
        );
        assert_eq!(
            debug,
            "SettingsPatch { config_map: {\"admin.enabled\": Some(\"false\")}, secret: \
             {\"admin.tokens\": \"<remove>\", \"server.secretkey\": \"<set>\"} }"
        );
    }
}
