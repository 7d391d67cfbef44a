//! What the repo service authenticates with: the credential an Argo CD repository Secret holds,
//! for Git fetches and for helm pulling charts.

use ferry_git::RepoCredential;
use ferry_types::secrets::RepoSecret;

/// The credential of a repository (or credential template) Secret.
pub fn repo_credential(repo: &RepoSecret) -> RepoCredential {
    RepoCredential {
        username: repo.username.clone(),
        password: repo.password.clone(),
        ssh_private_key: repo.ssh_private_key.clone(),
        insecure: repo.insecure,
        insecure_oci_force_http: repo.insecure_oci_force_http(),
    }
}
