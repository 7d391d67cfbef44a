//! Faults on purpose, for fault tests: a control-plane component killed with SIGKILL and started
//! again as it was (same binary, arguments, ports and data directory), or paused with SIGSTOP and
//! continued with SIGCONT. Only for a sandbox of one's own: other tests share the `test` one.

use std::fs;
use std::path::PathBuf;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::Sandbox;

/// A component killed by [`Sandbox::kill_component`], and how to start it again.
#[derive(Debug)]
pub struct Killed {
    name: String,
    program: PathBuf,
    args: Vec<String>,
}

impl Killed {
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Sandbox {
    /// Kills component `name` (`etcd`, `kube-apiserver`, ...) with SIGKILL: no chance to flush
    /// or say goodbye. Its data directory stays.
    pub fn kill_component(&self, name: &str) -> Result<Killed> {
        let component = self.component(name);
        let pid = component
            .running()
            .with_context(|| format!("{name} of sandbox {} is not running", self.name()))?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline"))?;
        let mut words = cmdline
            .split(|b| *b == 0)
            .filter(|w| !w.is_empty())
            .map(|w| String::from_utf8_lossy(w).into_owned());
        let program = PathBuf::from(words.next().context("empty command line")?);
        let args = words.collect();
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL)?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while component.running().is_some() {
            if Instant::now() > deadline {
                bail!("{name} (pid {pid}) did not die");
            }
            thread::sleep(Duration::from_millis(20));
        }
        Ok(Killed {
            name: name.to_string(),
            program,
            args,
        })
    }

    /// Starts a killed component again, as it was; returns its pid.
    pub fn start_component(&self, killed: Killed) -> Result<u32> {
        self.component(&killed.name)
            .spawn(&killed.program, &killed.args)
    }

    /// Pauses (SIGSTOP) or continues (SIGCONT) component `name`: a process that holds its
    /// connections open and answers nothing.
    pub fn pause_component(&self, name: &str, paused: bool) -> Result<()> {
        let pid = self
            .component(name)
            .running()
            .with_context(|| format!("{name} of sandbox {} is not running", self.name()))?;
        let signal = if paused {
            Signal::SIGSTOP
        } else {
            Signal::SIGCONT
        };
        kill(Pid::from_raw(pid as i32), signal)?;
        Ok(())
    }
}
