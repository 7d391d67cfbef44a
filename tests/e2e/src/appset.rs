//! `ferry-appset-controller` as a process beside the sandbox, for the ApplicationSet stories.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, Result};
use ferry_testkit::server::workspace_binary;
use tempfile::TempDir;

use crate::Story;

/// `ferry-appset-controller` for a story's namespace; killed when dropped.
pub struct AppSetController {
    child: Child,
    log: PathBuf,
    _work: TempDir,
}

impl AppSetController {
    /// With the sandbox's admin kubeconfig.
    pub fn start(story: &Story) -> Result<Self> {
        Self::start_as(story, story.ctx.kubeconfig(), &[])
    }

    /// With the credentials of `kubeconfig` and more flags.
    pub fn start_as(story: &Story, kubeconfig: &Path, args: &[&str]) -> Result<Self> {
        let work = tempfile::Builder::new().prefix("ferry-appset-").tempdir()?;
        let log = work.path().join("appset-controller.log");
        let out = File::create(&log)?;
        let child = Command::new(workspace_binary("ferry-appset-controller")?)
            .args(["--namespace", story.namespace()])
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .arg("--cache-dir")
            .arg(work.path().join("cache"))
            .args(args)
            .env("FERRY_LOG", "info,ferry_appset=debug,kube=warn")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting ferry-appset-controller")?;
        Ok(Self {
            child,
            log,
            _work: work,
        })
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as a node failure would.
    pub fn kill(&mut self) -> Result<()> {
        self.child.kill()?;
        self.child.wait()?;
        Ok(())
    }
}

impl Drop for AppSetController {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
