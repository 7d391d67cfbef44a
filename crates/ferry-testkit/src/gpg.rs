//! A GnuPG key made for one test, in a GNUPGHOME of its own (never the user's keyring), to sign
//! commits with ([`crate::git::GitRepo::commit_signed`]) and to configure as a trusted key.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

/// An ed25519 signing key without passphrase.
pub struct GpgKey {
    home: TempDir,
    /// Long key ID, 16 upper-case hex digits (what AppProjects list in `signatureKeys`).
    pub key_id: String,
    /// 40 upper-case hex digits.
    pub fingerprint: String,
}

impl GpgKey {
    /// Generates a key whose user ID is `<name> <name@example.invalid>`.
    pub fn generate(name: &str) -> Result<Self> {
        let home = tempfile::Builder::new()
            .prefix("ferry-gpg-key-")
            .tempdir()?;
        std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o700))?;
        let uid = format!("{name} <{name}@example.invalid>");
        gpg(&home, &["--passphrase", "", "--pinentry-mode", "loopback"])
            .args(["--quick-gen-key", &uid, "ed25519", "sign", "never"])
            .output()
            .context("running gpg (is gnupg installed?)")
            .and_then(succeeded("gpg --quick-gen-key"))?;
        let listing = gpg(&home, &["--with-colons", "--list-keys", &uid])
            .output()
            .context("running gpg")
            .and_then(succeeded("gpg --list-keys"))?;
        let fingerprint = String::from_utf8_lossy(&listing.stdout)
            .lines()
            .find_map(|line| line.strip_prefix("fpr:"))
            .and_then(|rest| rest.split(':').find(|field| !field.is_empty()))
            .context("no fingerprint in gpg's listing")?
            .to_uppercase();
        let key_id = fingerprint[fingerprint.len() - 16..].to_string();
        let key = GpgKey {
            home,
            key_id,
            fingerprint,
        };
        // git runs `gpg.program`; this one uses the key's home only.
        let wrapper = key.wrapper();
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec gpg --homedir '{}' \"$@\"\n",
                key.home.path().display()
            ),
        )?;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700))?;
        Ok(key)
    }

    /// The ASCII-armored public key (a value of Argo CD's `argocd-gpg-keys-cm`).
    pub fn armored_public_key(&self) -> Result<String> {
        let out = gpg(&self.home, &["--armor", "--export", &self.fingerprint])
            .output()
            .context("running gpg")
            .and_then(succeeded("gpg --export"))?;
        Ok(String::from_utf8(out.stdout)?)
    }

    /// `git -c ...` options that make `git commit -S` sign with this key.
    pub fn git_signing_options(&self) -> Vec<String> {
        vec![
            "-c".into(),
            format!("gpg.program={}", self.wrapper().display()),
            "-c".into(),
            format!("user.signingkey={}", self.fingerprint),
        ]
    }

    fn wrapper(&self) -> PathBuf {
        self.home.path().join("gpg-for-git")
    }
}

impl Drop for GpgKey {
    fn drop(&mut self) {
        // Signing started a gpg-agent for this home; it would outlive the test.
        let _ = Command::new("gpgconf")
            .arg("--homedir")
            .arg(self.home.path())
            .args(["--kill", "all"])
            .output();
    }
}

fn gpg(home: &TempDir, args: &[&str]) -> Command {
    let mut cmd = Command::new("gpg");
    cmd.args(["--batch", "--no-tty", "--homedir"])
        .arg(home.path())
        .args(args)
        .env_remove("GNUPGHOME");
    cmd
}

fn succeeded(
    what: &'static str,
) -> impl FnOnce(std::process::Output) -> Result<std::process::Output> {
    move |out| {
        if !out.status.success() {
            bail!(
                "{what} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(out)
    }
}
