//! The toolchain's `helm`, run with a helm home of its own (deleted afterwards), so nothing a
//! fixture does (registry logins, repositories) reaches the user's helm configuration.

use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use tempfile::TempDir;

pub(crate) struct Helm {
    binary: PathBuf,
    home: TempDir,
}

impl Helm {
    pub(crate) fn new() -> Result<Self> {
        let binary = ferry_sandbox::toolchain::bin_dir().join("helm");
        if !binary.is_file() {
            bail!(
                "{} is missing: build it with scripts/toolchain",
                binary.display()
            );
        }
        let home = tempfile::Builder::new()
            .prefix("ferry-helm-home-")
            .tempdir()?;
        Ok(Helm { binary, home })
    }

    /// `helm package <chart_dir>`: the archive, in a directory of its own inside the helm home.
    pub(crate) fn package(&self, chart_dir: &Path) -> Result<PathBuf> {
        let destination = tempfile::tempdir_in(self.home.path())?.keep();
        let args = [
            OsStr::new("package"),
            chart_dir.as_os_str(),
            OsStr::new("--destination"),
            destination.as_os_str(),
        ];
        self.run(&args, None)?;
        Ok(std::fs::read_dir(&destination)?
            .next()
            .context("helm package wrote no archive")??
            .path())
    }

    /// Runs helm with `stdin` as its input; fails with its stderr.
    pub(crate) fn run(&self, args: &[&OsStr], stdin: Option<&str>) -> Result<()> {
        let home = self.home.path();
        let mut child = Command::new(&self.binary)
            .args(args)
            .env_clear()
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .env("HELM_REGISTRY_CONFIG", home.join("registry.json"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running {}", self.binary.display()))?;
        let mut input = child.stdin.take().context("piped stdin")?;
        input.write_all(stdin.unwrap_or_default().as_bytes())?;
        drop(input);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            let args: Vec<_> = args.iter().map(|arg| arg.to_string_lossy()).collect();
            bail!(
                "helm {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(())
    }
}
