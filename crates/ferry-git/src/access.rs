//! Access fingerprints: what keeps cached content behind the credential that fetched it.
//!
//! A mirror holds whatever the credential that filled it could read. Were mirrors shared by
//! every app of a repository URL, an app naming a full commit SHA would be served a commit
//! fetched with another tenant's credential without ever authenticating, and so would a render
//! cache hit. So mirrors (and their locks) are keyed by the URL *and* a fingerprint of the
//! credential used: an HMAC-SHA256, under a random key private to the cache directory, of
//! every secret and flag of the credential and of the userinfo in the URL. The fingerprint
//! never reveals the secret (the key is never shown, and without it even a weak password cannot
//! be tested against a mirror's name), and it is stable across restarts, so mirrors are reused.
//!
//! The common case costs nothing: a repository reached with one credential has exactly one
//! mirror, as before. Apps whose credentials differ (another project's Secret, a template,
//! none, a rotated password) each fetch into a mirror of their own, so what they are served
//! they have fetched themselves. Renders are cached under the same fingerprint (see
//! `ferry-render`), so a render cache hit needs the credential that produced it.
//!
//! The key is made when a cache directory is first used; the mirrors an earlier version kept
//! per URL alone are removed then. A mirror whose credential is no longer configured (a rotated
//! password) is not used again, and stays on disk until the directory is cleaned.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::repo_url::SCP_LIKE;
use crate::{GitError, RepoCredential};

/// The file under the cache root holding the fingerprint key (32 random bytes, mode 0600).
pub(crate) const KEY_FILE: &str = "access-fingerprint.key";

/// The fingerprint key of the cache at `root`, made on first use. Concurrent first uses (two
/// processes sharing the directory) agree: the key is written to a scratch file and linked into
/// place without replacing one that appeared meanwhile.
pub(crate) fn load_or_create_key(root: &Path) -> Result<[u8; 32], GitError> {
    let path = root.join(KEY_FILE);
    let io = |doing: &str, e| GitError::io(format!("{doing} {}", path.display()), e);
    match std::fs::read(&path) {
        Ok(bytes) => {
            if let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice()) {
                return Ok(key);
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("reading", e)),
    }
    create_private_dir(root)?;
    let key: [u8; 32] = rand::random();
    let mut scratch = tempfile::Builder::new()
        .prefix(".key-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(root)
        .map_err(|e| io("creating", e))?;
    scratch.write_all(&key).map_err(|e| io("writing", e))?;
    scratch.as_file().sync_all().map_err(|e| io("writing", e))?;
    let replace_broken = path.exists();
    let persisted = if replace_broken {
        scratch.persist(&path).map(drop)
    } else {
        scratch.persist_noclobber(&path).map(drop)
    };
    match persisted {
        Ok(()) => {
            remove_unkeyed_mirrors(&root.join("mirrors"));
            Ok(key)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(&path).map_err(|e| io("reading", e))?;
            <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
                io(
                    "reading",
                    std::io::Error::other("not a fingerprint key (32 bytes)"),
                )
            })
        }
        Err(e) => Err(io("creating", e.error)),
    }
}

/// Removes the mirrors an earlier version kept per URL only (`<32 hex digits>.git`): they may
/// hold commits no current credential can fetch, and nothing uses them any more.
fn remove_unkeyed_mirrors(mirrors: &Path) {
    let Ok(entries) = std::fs::read_dir(mirrors) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let unkeyed = name
            .to_str()
            .and_then(|n| n.strip_suffix(".git"))
            .is_some_and(|stem| stem.len() == 32 && stem.bytes().all(|b| b.is_ascii_hexdigit()));
        if unkeyed && let Err(e) = std::fs::remove_dir_all(entry.path()) {
            tracing::warn!(mirror = %entry.path().display(), error = %e, "removing an old mirror");
        }
    }
}

/// The fingerprint of reaching `url` with `credential`: 32 hex digits of an HMAC-SHA256 under
/// `key` over the URL's userinfo and every field of the credential (absent and empty differ).
pub(crate) fn fingerprint(
    key: &[u8; 32],
    url: &str,
    credential: Option<&RepoCredential>,
) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    let mut field = |value: Option<&str>| match value {
        None => mac.update(&[0]),
        Some(value) => {
            mac.update(&[1]);
            mac.update(&(value.len() as u64).to_le_bytes());
            mac.update(value.as_bytes());
        }
    };
    let (user, password) = userinfo(url);
    field(user.as_deref());
    field(password.as_deref());
    let none = RepoCredential::default();
    let (present, credential) = match credential {
        Some(credential) => ("credential", credential),
        None => ("none", &none),
    };
    field(Some(present));
    field(credential.username.as_deref());
    field(credential.password.as_deref());
    field(credential.ssh_private_key.as_deref());
    field(Some(if credential.insecure { "insecure" } else { "" }));
    field(Some(if credential.insecure_oci_force_http {
        "plain-http"
    } else {
        ""
    }));
    let client_cert = credential.tls_client_cert.as_ref();
    field(client_cert.map(|c| c.cert_pem.as_str()));
    field(client_cert.map(|c| c.key_pem.as_str()));
    field(credential.proxy.as_deref());
    field(credential.no_proxy.as_deref());
    let app = credential.github_app.as_ref();
    field(app.map(|a| a.app_id.to_string()).as_deref());
    field(app.map(|a| a.installation_id.to_string()).as_deref());
    field(app.map(|a| a.private_key.as_str()));
    field(app.map(|a| a.api()).as_deref());
    hex::encode(&mac.finalize().into_bytes()[..16])
}

/// The user and password a URL carries (`scheme://user:password@`, scp-like `user@host:`).
fn userinfo(url: &str) -> (Option<String>, Option<String>) {
    let url = url.trim();
    if url.contains("://") {
        return match url::Url::parse(url) {
            Ok(parsed) => (
                Some(parsed.username().to_owned()).filter(|u| !u.is_empty()),
                parsed.password().map(str::to_owned),
            ),
            // Unparsable: the whole text stands for whatever it carries.
            Err(_) => (Some(url.to_owned()), None),
        };
    }
    let user = SCP_LIKE
        .captures(url)
        .and_then(|caps| caps.get(1))
        .map(|user| user.as_str().to_owned());
    (user, None)
}

/// Create `dir` (and missing parents) readable by this user only.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), GitError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| GitError::io(format!("creating {}", dir.display()), e))
}

/// [`create_private_dir`], and make it private if it existed with wider permissions (made by an
/// earlier version): for the cache's own `mirrors/` and `checkouts/`.
pub(crate) fn ensure_private_dir(dir: &Path) -> Result<(), GitError> {
    create_private_dir(dir)?;
    let io = |e| GitError::io(format!("making {} private", dir.display()), e);
    let mode = std::fs::metadata(dir).map_err(io)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode & 0o700)).map_err(io)?;
    }
    Ok(())
}

/// Where the mirror of a repository fetched with one credential lives under `mirrors_dir`:
/// `<sha256(mirror key)[..32]>-<fingerprint>.git`.
pub(crate) fn mirror_path(mirrors_dir: &Path, mirror_key: &str, fingerprint: &str) -> PathBuf {
    use sha2::Digest;
    let digest = Sha256::digest(mirror_key.as_bytes());
    mirrors_dir.join(format!("{}-{fingerprint}.git", &hex::encode(digest)[..32]))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: [u8; 32] = [7; 32];

    #[test]
    fn fingerprints_differ_by_every_secret_and_flag_and_hide_them() {
        let url = "https://git.example.com/org/app.git";
        let basic = RepoCredential::basic("alice", "s3cret");
        let all = [
            fingerprint(&KEY, url, None),
            fingerprint(&KEY, url, Some(&RepoCredential::default())),
            fingerprint(&KEY, url, Some(&basic)),
            fingerprint(&KEY, url, Some(&RepoCredential::basic("alice", "other"))),
            fingerprint(&KEY, url, Some(&RepoCredential::basic("bob", "s3cret"))),
            fingerprint(&KEY, url, Some(&RepoCredential::token("s3cret"))),
            fingerprint(&KEY, url, Some(&RepoCredential::ssh_key("s3cret"))),
            fingerprint(&KEY, url, Some(&basic.clone().insecure(true))),
            fingerprint(
                &KEY,
                url,
                Some(&RepoCredential {
                    insecure_oci_force_http: true,
                    ..basic.clone()
                }),
            ),
            fingerprint(
                &KEY,
                url,
                Some(&RepoCredential {
                    tls_client_cert: Some(crate::ClientCert {
                        cert_pem: "CERT".into(),
                        key_pem: "s3cret".into(),
                    }),
                    ..basic.clone()
                }),
            ),
            fingerprint(
                &KEY,
                url,
                Some(&RepoCredential {
                    proxy: Some("http://proxy:3128".into()),
                    ..basic.clone()
                }),
            ),
            fingerprint(
                &KEY,
                url,
                Some(&RepoCredential {
                    github_app: Some(crate::GithubApp {
                        app_id: 1,
                        installation_id: 2,
                        private_key: "s3cret".into(),
                        enterprise_base_url: None,
                    }),
                    ..RepoCredential::default()
                }),
            ),
            fingerprint(
                &KEY,
                url,
                Some(&RepoCredential {
                    proxy: Some("http://proxy:3128".into()),
                    no_proxy: Some("git.example.com".into()),
                    ..basic.clone()
                }),
            ),
            // Credentials in the URL count as credentials.
            fingerprint(
                &KEY,
                "https://alice:s3cret@git.example.com/org/app.git",
                None,
            ),
            fingerprint(&KEY, "https://alice@git.example.com/org/app.git", None),
            fingerprint(&KEY, "bob@git.example.com:org/app.git", None),
            // Another key, another fingerprint.
            fingerprint(&[8; 32], url, Some(&basic)),
        ];
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "{all:#?}");
        for f in &all {
            assert_eq!(f.len(), 32);
            assert!(!f.contains("s3cret") && !f.contains("alice"));
        }
        // Stable: the same inputs give the same fingerprint.
        assert_eq!(fingerprint(&KEY, url, Some(&basic)), all[2]);
        // Without userinfo the URL itself does not matter (the mirror path has it already).
        assert_eq!(
            fingerprint(&KEY, "https://h/x", None),
            fingerprint(&KEY, "https://h/y", None)
        );
    }

    #[test]
    fn the_key_is_made_once_private_and_then_reused() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("cache");
        let key = load_or_create_key(&dir).unwrap();
        let file = dir.join(KEY_FILE);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        assert_eq!(load_or_create_key(&dir).unwrap(), key);
        // Another cache directory has another key; making it removes the mirrors an earlier
        // version kept per URL only, and nothing else.
        let other = root.path().join("other");
        let unkeyed = other.join("mirrors/0123456789abcdef0123456789abcdef.git");
        let keyed = other.join(format!(
            "mirrors/0123456789abcdef0123456789abcdef-{}.git",
            "f".repeat(32)
        ));
        for dir in [&unkeyed, &keyed] {
            std::fs::create_dir_all(dir.join("objects")).unwrap();
        }
        assert_ne!(load_or_create_key(&other).unwrap(), key);
        assert!(!unkeyed.exists() && keyed.exists());
        // Directories of an earlier version are made private.
        let old = root.path().join("checkouts");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        ensure_private_dir(&old).unwrap();
        let mode = std::fs::metadata(&old).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        // A damaged key file is replaced.
        std::fs::write(&file, b"short").unwrap();
        let replaced = load_or_create_key(&dir).unwrap();
        assert_eq!(load_or_create_key(&dir).unwrap(), replaced);
    }
}
