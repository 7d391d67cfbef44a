//! OpenPGP (GnuPG) signatures of commits, for AppProjects that list `signatureKeys`.
//!
//! A commit is verified in the mirror it was fetched into: libgit2 splits the commit object into
//! its `gpgsig` header and the signed rest (what `git verify-commit` hands gpg), and the real
//! `gpg` checks the signature in a GNUPGHOME made for this one verification, holding only the
//! public keys the caller configured. Nothing else is trusted: not the user's keyring, not a
//! key server, and no agent is started. gpg's machine-readable status lines decide the verdict;
//! anything but exactly one good, valid signature is an error.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use git2::{ErrorCode, Oid, Repository};

use crate::repo_url::RepoUrl;
use crate::{GitError, RepoCache, access};

/// The `gpg` binary (looked up in `PATH`).
const GPG: &str = "gpg";

/// Who made a good signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Long key ID (16 hex digits, upper case) of the key that made the signature; a subkey's
    /// when a subkey signed.
    pub key_id: String,
    /// Fingerprint of that key.
    pub fingerprint: String,
    /// Fingerprint of its primary key (the same as `fingerprint` when the primary key signed).
    pub primary_fingerprint: String,
    /// The key's user ID, as gpg reports it.
    pub user_id: String,
}

impl Signer {
    /// The long key ID of the primary key.
    pub fn primary_key_id(&self) -> String {
        long_key_id(&self.primary_fingerprint)
    }

    /// Whether one of `key_ids` names the signing key or its primary key. Entries are long key
    /// IDs (16 hex digits) or fingerprints, as AppProjects list them (case, spaces and a `0x`
    /// prefix do not matter); anything else names no key.
    pub fn is_one_of<S: AsRef<str>>(&self, key_ids: &[S]) -> bool {
        let known = [
            self.key_id.clone(),
            self.primary_key_id(),
            self.fingerprint.clone(),
            self.primary_fingerprint.clone(),
        ];
        key_ids
            .iter()
            .filter_map(|id| normalize_key_id(id.as_ref()))
            .any(|id| known.contains(&id))
    }
}

/// Why a commit's signature is not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("commit {sha} is not signed")]
    Unsigned { sha: String },
    #[error("commit {sha} is signed with key {key_id}, whose public key is not configured")]
    UnknownKey { sha: String, key_id: String },
    #[error("commit {sha} has a bad signature from key {key_id}")]
    Bad { sha: String, key_id: String },
    #[error("commit {sha} is signed with key {key_id}, but the signature is not valid: {reason}")]
    Invalid {
        sha: String,
        key_id: String,
        reason: &'static str,
    },
    #[error("the signature of commit {sha} cannot be verified: {reason}")]
    Unverifiable { sha: String, reason: String },
    #[error(transparent)]
    Git(#[from] GitError),
}

impl RepoCache {
    /// Verifies the OpenPGP signature of commit `sha` (a full SHA; fetched first if the mirror
    /// lacks it) of repository `url` against `public_keys` (ASCII-armored public keys) and
    /// nothing else. Whether the signer is one the caller accepts is the caller's to decide,
    /// with [`Signer::is_one_of`].
    pub async fn verify_commit_signature(
        &self,
        url: &str,
        sha: &str,
        public_keys: &[String],
    ) -> Result<Signer, SignatureError> {
        let commit = self.resolve(url, sha).await?.sha;
        let mirror = self.mirror_of(url)?;
        let keys = public_keys.to_vec();
        let display = RepoUrl::parse(url)?.display();
        tokio::task::spawn_blocking(move || verify_in_mirror(&mirror, &display, &commit, &keys))
            .await
            .map_err(|err| SignatureError::Unverifiable {
                sha: sha.to_owned(),
                reason: format!("verification task failed: {err}"),
            })?
    }

    /// The mirror this handle fetches `url` into. It must name the same directory as the
    /// cache's own lookup (same root, mirror key and access fingerprint); the tests check that.
    pub(crate) fn mirror_of(&self, url: &str) -> Result<PathBuf, GitError> {
        let repo_url = RepoUrl::parse(url)?;
        let fingerprint = self.access_fingerprint(url)?;
        Ok(access::mirror_path(
            &self.root().join("mirrors"),
            &repo_url.mirror_key(),
            &fingerprint,
        ))
    }
}

fn verify_in_mirror(
    mirror: &Path,
    url: &str,
    sha: &str,
    public_keys: &[String],
) -> Result<Signer, SignatureError> {
    let git_error = |err: git2::Error| GitError::Git {
        url: url.to_owned(),
        message: err.message().to_owned(),
    };
    let repo = Repository::open_bare(mirror).map_err(git_error)?;
    let oid = Oid::from_str(sha).map_err(git_error)?;
    let (signature, payload) = match repo.extract_signature(&oid, None) {
        Ok(parts) => parts,
        Err(err) if err.code() == ErrorCode::NotFound => {
            return Err(SignatureError::Unsigned {
                sha: sha.to_owned(),
            });
        }
        Err(err) => return Err(git_error(err).into()),
    };
    verify_detached(sha, &signature, &payload, public_keys)
}

/// Checks `signature` over `payload` with a throw-away GNUPGHOME holding `public_keys` only.
fn verify_detached(
    sha: &str,
    signature: &[u8],
    payload: &[u8],
    public_keys: &[String],
) -> Result<Signer, SignatureError> {
    let unverifiable = |reason: String| SignatureError::Unverifiable {
        sha: sha.to_owned(),
        reason,
    };
    // Created with mode 0700, as gpg wants its home; removed when dropped.
    let home = tempfile::Builder::new()
        .prefix("ferry-gpg-")
        .tempdir()
        .map_err(|err| unverifiable(format!("creating a GnuPG home: {err}")))?;
    if !public_keys.is_empty() {
        let keys = public_keys.join("\n");
        // Keys that do not parse are skipped by gpg; a signature by them then has no key.
        run_gpg(home.path(), &["--import"], keys.as_bytes())
            .map_err(|err| unverifiable(format!("importing the public keys: {err}")))?;
    }
    let signature_file = home.path().join("commit.sig");
    std::fs::write(&signature_file, signature)
        .map_err(|err| unverifiable(format!("writing the signature: {err}")))?;
    let signature_path = signature_file.to_string_lossy().into_owned();
    let output = run_gpg(
        home.path(),
        &[
            // Trust comes from the caller's list of keys, not from a web of trust.
            "--trust-model",
            "always",
            "--status-fd",
            "1",
            "--verify",
            &signature_path,
            "-",
        ],
        payload,
    )
    .map_err(|err| unverifiable(format!("running {GPG}: {err}")))?;
    let status = String::from_utf8_lossy(&output.stdout);
    verdict(sha, &status, output.status.success())
}

/// Runs gpg on `home` only, never starting an agent or touching the network.
pub(crate) fn run_gpg(
    home: &Path,
    args: &[&str],
    stdin: &[u8],
) -> std::io::Result<std::process::Output> {
    let mut child = Command::new(GPG)
        .arg("--batch")
        .arg("--no-tty")
        .arg("--no-autostart")
        .arg("--homedir")
        .arg(home)
        .args(args)
        .env_remove("GNUPGHOME")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let mut input = child.stdin.take().expect("stdin is piped");
    let data = stdin.to_vec();
    // Written from another thread, so a full stdout pipe cannot block both sides.
    let writer = std::thread::spawn(move || input.write_all(&data));
    let output = child.wait_with_output()?;
    // gpg may stop reading early (bad input); its status lines say what went wrong.
    let _ = writer.join();
    Ok(output)
}

/// The verdict of gpg's status lines (`[GNUPG:] KEYWORD args`): accepted only for exactly one
/// signature that is good and valid, with gpg agreeing through its exit status.
fn verdict(sha: &str, status: &str, succeeded: bool) -> Result<Signer, SignatureError> {
    let sha = sha.to_owned();
    let mut signatures = 0;
    let mut good: Option<(String, String)> = None;
    let mut valid: Option<(String, String)> = None;
    for line in status.lines() {
        let Some(rest) = line.strip_prefix("[GNUPG:] ") else {
            continue;
        };
        let fields: Vec<&str> = rest.split(' ').collect();
        let arg = |i: usize| fields.get(i).copied().unwrap_or_default().to_owned();
        let key_id = arg(1);
        let invalid = |reason| SignatureError::Invalid {
            sha: sha.clone(),
            key_id: key_id.clone(),
            reason,
        };
        match fields[0] {
            "NEWSIG" => signatures += 1,
            "GOODSIG" => good = Some((key_id.clone(), fields[2..].join(" "))),
            "VALIDSIG" => {
                // VALIDSIG <fpr> <date> <time> <expire> <version> <reserved> <pk-algo>
                // <hash-algo> <class> <primary-fpr>
                let fingerprint = arg(1);
                let primary = fields
                    .get(10)
                    .map_or(fingerprint.clone(), |p| p.to_string());
                valid = Some((fingerprint, primary));
            }
            "BADSIG" => return Err(SignatureError::Bad { sha, key_id }),
            "NO_PUBKEY" => return Err(SignatureError::UnknownKey { sha, key_id }),
            // ERRSIG <keyid> ... <rc>: rc 9 is a missing public key.
            "ERRSIG" if fields.get(6) == Some(&"9") => {
                return Err(SignatureError::UnknownKey { sha, key_id });
            }
            "ERRSIG" => {
                return Err(SignatureError::Unverifiable {
                    sha,
                    reason: format!("gpg could not check the signature of key {key_id}"),
                });
            }
            "EXPSIG" => return Err(invalid("the signature has expired")),
            "EXPKEYSIG" => return Err(invalid("the key has expired")),
            "REVKEYSIG" => return Err(invalid("the key has been revoked")),
            "NODATA" => {
                return Err(SignatureError::Unverifiable {
                    sha,
                    reason: "the signature is not an OpenPGP signature".into(),
                });
            }
            _ => {}
        }
    }
    let unverifiable = |reason: &str| SignatureError::Unverifiable {
        sha: sha.clone(),
        reason: reason.to_owned(),
    };
    if signatures != 1 {
        return Err(unverifiable(&format!(
            "expected one signature, found {signatures}"
        )));
    }
    match (good, valid, succeeded) {
        (Some((key_id, user_id)), Some((fingerprint, primary)), true) => Ok(Signer {
            key_id: key_id.to_uppercase(),
            fingerprint: fingerprint.to_uppercase(),
            primary_fingerprint: primary.to_uppercase(),
            user_id,
        }),
        _ => Err(unverifiable(
            "gpg did not report a good and valid signature",
        )),
    }
}

/// The long key ID of a fingerprint: the last 16 hex digits of a v4 fingerprint (40 digits),
/// the first 16 of a v5 one (64 digits).
fn long_key_id(fingerprint: &str) -> String {
    if fingerprint.len() == 64 {
        fingerprint[..16].to_owned()
    } else {
        fingerprint[fingerprint.len().saturating_sub(16)..].to_owned()
    }
}

/// A key ID or fingerprint in the form [`Signer`] holds them; `None` if it is neither.
fn normalize_key_id(id: &str) -> Option<String> {
    let id: String = id.chars().filter(|c| !c.is_whitespace()).collect();
    let id = id
        .strip_prefix("0x")
        .or_else(|| id.strip_prefix("0X"))
        .unwrap_or(&id)
        .to_uppercase();
    let hex = id.chars().all(|c| c.is_ascii_hexdigit());
    (hex && matches!(id.len(), 16 | 40 | 64)).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Credentials;
    use ferry_testkit::git::GitRepo;
    use ferry_testkit::gpg::GpgKey;

    struct World {
        _root: tempfile::TempDir,
        cache: RepoCache,
        repo: GitRepo,
        trusted: GpgKey,
        stranger: GpgKey,
    }

    fn world() -> World {
        let root = tempfile::tempdir().unwrap();
        let cache = RepoCache::new(root.path(), Credentials::new());
        let repo = GitRepo::new().unwrap();
        World {
            _root: root,
            cache,
            repo,
            trusted: GpgKey::generate("trusted").unwrap(),
            stranger: GpgKey::generate("stranger").unwrap(),
        }
    }

    #[tokio::test]
    async fn a_commit_signed_with_a_configured_key_verifies() {
        let w = world();
        w.repo.write("a.yaml", "a: 1\n").unwrap();
        let sha = w.repo.commit_signed("signed", &w.trusted).unwrap();
        let keys = vec![w.trusted.armored_public_key().unwrap()];
        let signer = w
            .cache
            .verify_commit_signature(&w.repo.file_url(), &sha, &keys)
            .await
            .unwrap();
        assert_eq!(signer.key_id, w.trusted.key_id);
        assert_eq!(signer.fingerprint, w.trusted.fingerprint);
        assert!(signer.user_id.contains("trusted"), "{signer:?}");
        assert!(signer.is_one_of(&[w.trusted.key_id.to_lowercase()]));
        assert!(signer.is_one_of(&[w.trusted.fingerprint.as_str()]));
        assert!(!signer.is_one_of(&[w.stranger.key_id.as_str()]));
        assert!(!signer.is_one_of(&["*", "", &w.trusted.key_id[..8]]));
        // The directory verified in is the cache's own mirror of the URL.
        assert!(w.cache.mirror_of(&w.repo.file_url()).unwrap().is_dir());
    }

    #[tokio::test]
    async fn unsigned_unknown_and_unlisted_signatures_are_refused() {
        let w = world();
        let unsigned = w.repo.commit("unsigned").unwrap();
        let by_stranger = w.repo.commit_signed("stranger", &w.stranger).unwrap();
        let url = w.repo.file_url();
        let keys = vec![w.trusted.armored_public_key().unwrap()];
        let err = w
            .cache
            .verify_commit_signature(&url, &unsigned, &keys)
            .await
            .unwrap_err();
        assert!(matches!(err, SignatureError::Unsigned { .. }), "{err}");
        assert_eq!(err.to_string(), format!("commit {unsigned} is not signed"));
        // The stranger's public key is not configured: gpg cannot even check the signature.
        let err = w
            .cache
            .verify_commit_signature(&url, &by_stranger, &keys)
            .await
            .unwrap_err();
        match &err {
            SignatureError::UnknownKey { key_id, .. } => assert_eq!(key_id, &w.stranger.key_id),
            other => panic!("{other}"),
        }
        // With no keys at all, nothing verifies.
        let err = w
            .cache
            .verify_commit_signature(&url, &by_stranger, &[])
            .await
            .unwrap_err();
        assert!(matches!(err, SignatureError::UnknownKey { .. }), "{err}");
        // Configured but not listed: gpg says good, the caller's list says no.
        let both = vec![
            w.trusted.armored_public_key().unwrap(),
            w.stranger.armored_public_key().unwrap(),
        ];
        let signer = w
            .cache
            .verify_commit_signature(&url, &by_stranger, &both)
            .await
            .unwrap();
        assert!(!signer.is_one_of(&[w.trusted.key_id.as_str()]));
    }

    #[test]
    fn a_changed_payload_is_a_bad_signature() {
        let w = world();
        let sha = w.repo.commit_signed("signed", &w.trusted).unwrap();
        let repo = Repository::open_bare(w.repo.bare_path()).unwrap();
        let (signature, payload) = repo
            .extract_signature(&Oid::from_str(&sha).unwrap(), None)
            .unwrap();
        let keys = vec![w.trusted.armored_public_key().unwrap()];
        verify_detached(&sha, &signature, &payload, &keys).unwrap();
        let tampered = String::from_utf8_lossy(&payload).replace("signed", "tampered");
        let err = verify_detached(&sha, &signature, tampered.as_bytes(), &keys).unwrap_err();
        assert!(matches!(err, SignatureError::Bad { .. }), "{err}");
        let err = verify_detached(&sha, b"not a signature", &payload, &keys).unwrap_err();
        assert!(matches!(err, SignatureError::Unverifiable { .. }), "{err}");
    }

    #[test]
    fn status_lines_decide_and_anything_odd_is_refused() {
        let good = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG AAAABBBBCCCCDDDD Jane <j@x>\n\
                    [GNUPG:] VALIDSIG 1111222233334444AAAABBBBCCCCDDDD 2026-01-01 1 0 4 0 22 8 00 \
                    99998888777766665555444433332222EEEEFFFF\n";
        let signer = verdict("c0ffee", good, true).unwrap();
        assert_eq!(signer.key_id, "AAAABBBBCCCCDDDD");
        assert_eq!(signer.primary_key_id(), "33332222EEEEFFFF");
        assert_eq!(signer.user_id, "Jane <j@x>");
        assert!(signer.is_one_of(&["0x33332222eeeeffff"]));
        assert!(signer.is_one_of(&["9999 8888 7777 6666 5555 4444 3333 2222 EEEE FFFF"]));
        // gpg failing, two signatures, or a good signature without VALIDSIG: refused.
        assert!(verdict("c0ffee", good, false).is_err());
        let twice = format!("[GNUPG:] NEWSIG\n{good}");
        assert!(verdict("c0ffee", &twice, true).is_err());
        let no_valid = "[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG AAAABBBBCCCCDDDD Jane\n";
        assert!(verdict("c0ffee", no_valid, true).is_err());
        for (line, expected) in [
            ("EXPKEYSIG AAAABBBBCCCCDDDD Jane", "the key has expired"),
            (
                "REVKEYSIG AAAABBBBCCCCDDDD Jane",
                "the key has been revoked",
            ),
            ("EXPSIG AAAABBBBCCCCDDDD Jane", "the signature has expired"),
        ] {
            let status = format!("[GNUPG:] NEWSIG\n[GNUPG:] {line}\n{good}");
            let err = verdict("c0ffee", &status, true).unwrap_err();
            assert!(err.to_string().ends_with(expected), "{err}");
        }
        assert!(verdict("c0ffee", "", true).is_err());
    }
}
