//! The `ferry` CLI as tests run it: in a home of its own, so that nothing of the machine's user
//! takes part — no login context of `ferry login` (which would send commands to that server),
//! no `~/.kube/config`, no caches, no `FERRY_*` or `KUBECONFIG` variables. Tests name the
//! cluster they mean explicitly (`--kubeconfig`, `--server`).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;
use tempfile::TempDir;

/// Variables the CLI (and the tools it runs) read besides the `FERRY_*` ones.
const USER_VARIABLES: [&str; 6] = [
    "KUBECONFIG",
    "XDG_CONFIG_HOME",
    "XDG_CACHE_HOME",
    "GIT_CONFIG_GLOBAL",
    "HELM_CONFIG_HOME",
    "HELM_CACHE_HOME",
];

/// An empty home for CLI runs; removed when dropped.
pub struct CliHome {
    dir: TempDir,
}

impl CliHome {
    pub fn new() -> Result<Self> {
        Ok(CliHome {
            dir: tempfile::Builder::new()
                .prefix("ferry-cli-home")
                .tempdir()?,
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Where the CLI keeps its login contexts in this home.
    pub fn config(&self) -> PathBuf {
        self.path().join(".config/ferry/config")
    }

    /// `program` (the `ferry` binary) to run in this home.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        self.isolate(&mut command);
        command
    }

    /// Makes `command` run in this home, whatever its environment held: HOME, the XDG
    /// directories and `FERRY_CONFIG` point here, the user's variables are gone, and PATH has
    /// the toolchain first (helm and kustomize are no longer found through the user's cache).
    pub fn isolate<'a>(&self, command: &'a mut Command) -> &'a mut Command {
        let home = self.path();
        let ferry_variables = std::env::vars_os()
            .map(|(name, _)| name)
            .filter(|name| name.to_string_lossy().starts_with("FERRY_"));
        for name in ferry_variables {
            command.env_remove(name);
        }
        for name in [
            "FERRY_CONFIG",
            "FERRY_CACHE_DIR",
            "FERRY_AUTH_TOKEN",
            "FERRY_NAMESPACE",
        ]
        .into_iter()
        .chain(USER_VARIABLES)
        {
            command.env_remove(name);
        }
        command
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .env("FERRY_CONFIG", self.config())
            .env("PATH", ferry_sandbox::toolchain::search_path())
    }
}
