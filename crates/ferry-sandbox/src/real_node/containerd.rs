//! containerd with its own configuration, state and socket under the sandbox directory, and the
//! removal of every pod it runs (through crictl, so each pod's network is torn down too).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Result, bail};

use super::{PAUSE_IMAGE, cni, run};

/// containerd's files inside the sandbox directory.
pub struct Containerd {
    pub dir: PathBuf,
}

impl Containerd {
    pub fn socket(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    pub fn config(&self) -> PathBuf {
        self.dir.join("config.toml")
    }

    /// Where containerd looks for per-registry `<host:port>/hosts.toml` files (and their CA).
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.join("certs.d")
    }

    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket().display())
    }

    /// Writes the configuration. `root` (images, snapshots) outlives `down`, so a warm start
    /// imports nothing new; `state` is fresh every time.
    pub fn configure(&self, cni_conf: &Path) -> Result<()> {
        let state = self.dir.join("state");
        let _ = fs::remove_dir_all(&state);
        fs::create_dir_all(self.certs_dir())?;
        let config = format!(
            r#"version = 2
root = "{root}"
state = "{state}"

[grpc]
  address = "{socket}"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  # runc cannot give a container a negative oom_score_adj (the pause container asks for -998)
  # where root lacks CAP_SYS_RESOURCE, as in many VMs and containers: clamp to containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{plugins}"
    conf_dir = "{cni_conf}"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{certs}"
"#,
            root = self.dir.join("root").display(),
            state = state.display(),
            socket = self.socket().display(),
            plugins = cni::PLUGIN_DIR,
            cni_conf = cni_conf.display(),
            certs = self.certs_dir().display(),
        );
        fs::write(self.config(), config)?;
        Ok(())
    }

    pub fn args(&self) -> Vec<String> {
        vec!["--config".into(), self.config().display().to_string()]
    }

    fn ctr(&self) -> Command {
        let mut ctr = Command::new("ctr");
        ctr.arg("--address")
            .arg(self.socket())
            .args(["--namespace", "k8s.io"]);
        ctr
    }

    /// Waits until containerd answers on its socket.
    pub async fn wait(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let answered = self.socket().exists() && run(self.ctr().arg("version")).is_ok();
            if answered {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "containerd did not answer on {} after {timeout:?}",
                    self.socket().display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Imports OCI archives into the namespace the kubelet uses.
    pub fn import(&self, archives: &[PathBuf]) -> Result<()> {
        for archive in archives {
            run(self.ctr().args(["images", "import"]).arg(archive))?;
        }
        Ok(())
    }

    /// Stops and removes every pod sandbox (with its containers and network), best effort: the
    /// caller stops containerd afterwards either way.
    pub fn remove_pods(&self, crictl: &Path) -> Result<()> {
        run(Command::new(crictl)
            .arg("--runtime-endpoint")
            .arg(self.endpoint())
            .args(["rmp", "--all", "--force"]))?;
        Ok(())
    }
}
