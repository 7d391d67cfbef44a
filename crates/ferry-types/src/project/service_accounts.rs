//! `destinationServiceAccounts`: which service account a sync impersonates when
//! `application.sync.impersonation.enabled` is on, by Argo CD's rules
//! (`DeriveServiceAccountToImpersonate`): the first entry whose `server` glob matches the
//! destination cluster's URL and whose `namespace` glob matches the destination namespace
//! wins; its `defaultServiceAccount` is `<namespace>:<name>`, or a bare `<name>` in the
//! destination namespace (the Application's own namespace when the destination names none).

use super::AppProject;
use super::glob::{Glob, Negation, Separator};

/// Characters Argo CD refuses in `defaultServiceAccount` (glob and path characters).
const DISALLOWED: &[char] = &['!', '*', '[', ']', '{', '}', '\\', '/'];

impl AppProject {
    /// The user a sync to `cluster_server`/`dest_namespace` impersonates,
    /// `system:serviceaccount:<namespace>:<name>`; `Ok(None)` when no entry matches. An entry
    /// that matches but is unusable (a bad pattern, a blank name or one with glob characters)
    /// is an error, never a fall-through to the next entry.
    pub fn service_account_to_impersonate(
        &self,
        cluster_server: &str,
        dest_namespace: &str,
        app_namespace: &str,
    ) -> Result<Option<String>, String> {
        let account_namespace = if dest_namespace.is_empty() {
            app_namespace
        } else {
            dest_namespace
        };
        for entry in &self.spec.destination_service_accounts {
            let server = glob(&entry.server)
                .map_err(|err| format!("invalid glob pattern for destination server: {err}"))?;
            let namespace = glob(&entry.namespace)
                .map_err(|err| format!("invalid glob pattern for destination namespace: {err}"))?;
            if !(server.matches(cluster_server) && namespace.matches(dest_namespace)) {
                continue;
            }
            let account = &entry.default_service_account;
            if account.trim().is_empty() || account.contains(DISALLOWED) {
                return Err(format!(
                    "default service account contains invalid chars '{account}'"
                ));
            }
            return Ok(Some(if account.contains(':') {
                format!("system:serviceaccount:{account}")
            } else {
                format!("system:serviceaccount:{account_namespace}:{account}")
            }));
        }
        Ok(None)
    }
}

/// Argo CD matches these with plain globs: `*` crosses `/`, and `!` is no denial.
fn glob(pattern: &str) -> Result<Glob, globset::Error> {
    Glob::new(pattern, Separator::None, Negation::Literal)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "https://cluster-api.example.com";

    fn project(entries: &str) -> AppProject {
        serde_yaml::from_str(&format!(
            "metadata: {{name: team}}\nspec: {{destinationServiceAccounts: {entries}}}"
        ))
        .unwrap()
    }

    fn derive(entries: &str, namespace: &str) -> Result<Option<String>, String> {
        project(entries).service_account_to_impersonate(SERVER, namespace, "argocd")
    }

    #[test]
    fn the_first_matching_entry_names_the_account() {
        let entries = "[{server: 'https://other', namespace: '*', defaultServiceAccount: nope}, \
                       {server: '*', namespace: 'dest-*', defaultServiceAccount: first-sa}, \
                       {server: '*', namespace: '*', defaultServiceAccount: second-sa}]";
        assert_eq!(
            derive(entries, "dest-ns").unwrap().as_deref(),
            Some("system:serviceaccount:dest-ns:first-sa")
        );
        assert_eq!(
            derive(entries, "other").unwrap().as_deref(),
            Some("system:serviceaccount:other:second-sa")
        );
        assert_eq!(
            derive(
                &format!(
                    "[{{server: '{SERVER}', namespace: web, defaultServiceAccount: deployer}}]"
                ),
                "web"
            )
            .unwrap()
            .as_deref(),
            Some("system:serviceaccount:web:deployer")
        );
    }

    #[test]
    fn an_account_can_name_its_namespace() {
        let entries =
            "[{server: '*', namespace: '*', defaultServiceAccount: 'other-ns:deploy-sa'}]";
        assert_eq!(
            derive(entries, "web").unwrap().as_deref(),
            Some("system:serviceaccount:other-ns:deploy-sa")
        );
    }

    #[test]
    fn no_destination_namespace_means_the_apps_namespace() {
        let entries = "[{server: '*', namespace: '', defaultServiceAccount: test-sa}]";
        assert_eq!(
            derive(entries, "").unwrap().as_deref(),
            Some("system:serviceaccount:argocd:test-sa")
        );
        assert_eq!(derive(entries, "web").unwrap(), None);
    }

    #[test]
    fn no_match_is_none() {
        assert_eq!(derive("[]", "web").unwrap(), None);
        let entries =
            "[{server: 'https://other-server.com', namespace: '*', defaultServiceAccount: x}]";
        assert_eq!(derive(entries, "web").unwrap(), None);
    }

    #[test]
    fn unusable_entries_are_errors() {
        for account in ["'bad*sa'", "'  '", "'a/b'", "'[x]'"] {
            let entries =
                format!("[{{server: '*', namespace: '*', defaultServiceAccount: {account}}}]");
            let err = derive(&entries, "web").unwrap_err();
            assert!(
                err.contains("default service account contains invalid chars"),
                "{err}"
            );
        }
        let err = derive(
            "[{server: '[', namespace: web, defaultServiceAccount: x}]",
            "web",
        );
        assert!(
            err.unwrap_err()
                .contains("invalid glob pattern for destination server")
        );
        let err = derive(
            "[{server: '*', namespace: '[', defaultServiceAccount: x}]",
            "web",
        );
        assert!(
            err.unwrap_err()
                .contains("invalid glob pattern for destination namespace")
        );
    }
}
