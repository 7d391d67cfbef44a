//! What the repo service authenticates with: the credential an Argo CD repository Secret holds,
//! for Git fetches and for helm pulling charts, and the [`Credentials`] all of them make.

use ferry_git::{ClientCert, Credentials, GithubApp, RepoCredential};
use ferry_types::secrets::{RepoSecret, RepoSecretKind};

/// The credential of a repository (or credential template) Secret.
pub fn repo_credential(repo: &RepoSecret) -> RepoCredential {
    let text = |key: &str| {
        repo.unknown
            .get(key)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    // Argo CD uses a client certificate only with its key.
    let tls_client_cert = text("tlsClientCertData")
        .zip(text("tlsClientCertKey"))
        .map(|(cert_pem, key_pem)| ClientCert { cert_pem, key_pem });
    // As Argo CD: a GitHub App needs its key and non-zero app and installation IDs.
    let id = |key: &str| {
        text(key)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|id| *id != 0)
    };
    let github_app = text("githubAppPrivateKey")
        .zip(id("githubAppID"))
        .zip(id("githubAppInstallationID"))
        .map(|((private_key, app_id), installation_id)| GithubApp {
            app_id,
            installation_id,
            private_key,
            enterprise_base_url: text("githubAppEnterpriseBaseUrl"),
        });
    RepoCredential {
        username: repo.username.clone(),
        password: repo.password.clone(),
        ssh_private_key: repo.ssh_private_key.clone(),
        insecure: repo.insecure,
        insecure_oci_force_http: repo.insecure_oci_force_http(),
        tls_client_cert,
        proxy: text("proxy"),
        no_proxy: text("noProxy"),
        github_app,
    }
}

/// `credentials` with the entry of one repository or repo-creds Secret: for exactly its URL or
/// for the repositories under it, and only for the apps of its `project` when it names one
/// (see [`Credentials::lookup`]). The controller and the CLI build their credentials with it.
pub fn with_repo_secret(credentials: Credentials, repo: &RepoSecret) -> Credentials {
    let credential = repo_credential(repo);
    match repo.kind {
        RepoSecretKind::Repository => {
            credentials.with_project_repo(&repo.project, &repo.url, credential)
        }
        RepoSecretKind::RepoCreds => {
            credentials.with_project_template(&repo.project, &repo.url, credential)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_certificates_and_proxies_come_from_the_secret() {
        let credential = repo_credential(&secret(
            r#"
metadata: {name: repo, labels: {argocd.argoproj.io/secret-type: repository}}
stringData:
  url: https://git.example.com/app.git
  tlsClientCertData: CERT
  tlsClientCertKey: KEY
  proxy: http://proxy.example.com:3128
  noProxy: .internal.example.com,10.0.0.0/8
"#,
        ));
        let cert = credential.tls_client_cert.as_ref().unwrap();
        assert_eq!(
            (cert.cert_pem.as_str(), cert.key_pem.as_str()),
            ("CERT", "KEY")
        );
        assert_eq!(
            credential.proxy.as_deref(),
            Some("http://proxy.example.com:3128")
        );
        assert_eq!(
            credential.no_proxy.as_deref(),
            Some(".internal.example.com,10.0.0.0/8")
        );
        assert!(credential.github_app.is_none());
        let credential = repo_credential(&secret(
            r#"
metadata: {name: repo, labels: {argocd.argoproj.io/secret-type: repo-creds}}
stringData:
  url: https://ghe.example.com/org
  githubAppID: "41"
  githubAppInstallationID: "7"
  githubAppPrivateKey: APP-KEY
  githubAppEnterpriseBaseUrl: https://ghe.example.com/api/v3/
"#,
        ));
        let app = credential.github_app.unwrap();
        assert_eq!((app.app_id, app.installation_id), (41, 7));
        assert_eq!(app.private_key, "APP-KEY");
        assert_eq!(app.api(), "https://ghe.example.com/api/v3");
        // Without an installation ID there is no app.
        let credential = repo_credential(&secret(
            r#"
metadata: {name: repo, labels: {argocd.argoproj.io/secret-type: repository}}
stringData: {url: "https://github.com/org/app", githubAppID: "41", githubAppPrivateKey: KEY}
"#,
        ));
        assert!(credential.github_app.is_none());
        // A certificate without its key is no client certificate.
        let credential = repo_credential(&secret(
            r#"
metadata: {name: repo, labels: {argocd.argoproj.io/secret-type: repository}}
stringData: {url: "https://git.example.com/app.git", tlsClientCertData: CERT}
"#,
        ));
        assert!(credential.tls_client_cert.is_none());
    }

    fn secret(yaml: &str) -> RepoSecret {
        let secret: k8s_openapi::api::core::v1::Secret = serde_yaml::from_str(yaml).unwrap();
        RepoSecret::from_secret(&secret).unwrap()
    }

    /// Issue 10, item 5: the `project` of a repository or repo-creds Secret scopes it.
    #[test]
    fn secrets_with_a_project_serve_that_project_only() {
        let url = "https://git.example.com/team-a/app.git";
        let credentials = [
            r#"
metadata: {name: team-a-repo, labels: {argocd.argoproj.io/secret-type: repository}}
stringData: {url: "https://git.example.com/team-a/app.git", project: team-a, username: a, password: pa}
"#,
            r#"
metadata: {name: team-b-creds, labels: {argocd.argoproj.io/secret-type: repo-creds}}
stringData: {url: "https://git.example.com", project: team-b, username: b, password: pb}
"#,
            r#"
metadata: {name: global-repo, labels: {argocd.argoproj.io/secret-type: repository}}
stringData: {url: "https://git.example.com/team-a/app.git", insecure: "true"}
"#,
        ]
        .iter()
        .fold(Credentials::new(), |c, yaml| with_repo_secret(c, &secret(yaml)));
        let user = |project| credentials.lookup(url, project).and_then(|c| c.username);
        assert_eq!(user(Some("team-a")).as_deref(), Some("a"));
        assert_eq!(user(Some("team-b")).as_deref(), Some("b"));
        assert_eq!(user(Some("team-c")), None);
        assert_eq!(user(None), None);
        // team-b borrows its template's secrets for the global entry, with the entry's flags.
        assert!(credentials.lookup(url, Some("team-b")).unwrap().insecure);
        assert!(!credentials.lookup(url, Some("team-a")).unwrap().insecure);
    }
}
