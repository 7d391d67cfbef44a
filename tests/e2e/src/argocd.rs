//! The real `argocd` CLI (Argo CD's own, built by scripts/toolchain) as the stories drive it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// The `argocd` CLI with a config file of its own.
pub struct Argocd {
    config: PathBuf,
}

impl Argocd {
    pub fn new(dir: &Path) -> Self {
        Self {
            config: dir.join("argocd-config"),
        }
    }

    pub fn output(&self, args: &[&str]) -> Result<Output> {
        Command::new("argocd")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .context("running argocd (is scripts/toolchain's bin directory on PATH?)")
    }

    /// Runs `argocd args…`; its standard output, or an error with everything it said.
    pub fn run(&self, args: &[&str]) -> Result<String> {
        let output = self.output(args)?;
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        if !output.status.success() {
            bail!(
                "argocd {} failed ({}):\n{stdout}\n{}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(stdout)
    }

    /// Runs `argocd args…`, which must fail; what it said.
    pub fn refused(&self, args: &[&str]) -> Result<String> {
        let output = self.output(args)?;
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        if output.status.success() {
            bail!("argocd {} succeeded: {said}", args.join(" "));
        }
        Ok(said)
    }

    /// Logs in as admin over plain gRPC.
    pub fn login(&self, address: &str, password: &str) -> Result<()> {
        self.run(&[
            "login",
            address,
            "--plaintext",
            "--username",
            "admin",
            "--password",
            password,
        ])
        .map(drop)
    }

    /// Starts `argocd args…` that runs until stopped (`app logs --follow`), and waits up to
    /// `within` for a line of its output that `wanted` accepts; the process is killed either way.
    pub fn until_line(
        &self,
        args: &[&str],
        within: Duration,
        wanted: impl Fn(&str) -> bool,
    ) -> Result<String> {
        let mut child: Child = Command::new("argocd")
            .arg("--config")
            .arg(&self.config)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("running argocd")?;
        let stdout = child.stdout.take().context("argocd's output")?;
        let (lines, received) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = std::time::Instant::now() + within;
        let mut seen = Vec::new();
        let found = loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match received.recv_timeout(left) {
                Ok(line) if wanted(&line) => break Some(line),
                Ok(line) => seen.push(line),
                Err(_) => break None,
            }
        };
        let _ = child.kill();
        let _ = child.wait();
        found.with_context(|| {
            format!(
                "argocd {} did not say what was wanted within {within:?}; it said:\n{}",
                args.join(" "),
                seen.join("\n")
            )
        })
    }
}
