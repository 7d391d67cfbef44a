//! Detached component processes, tracked by pid files so that `status` and `down` work from any
//! later process (a test binary, the CLI, a script).

use std::fs::{self, File};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where a component keeps its pid and log.
pub struct Component<'a> {
    pub name: &'a str,
    pub dir: &'a Path,
}

impl Component<'_> {
    fn pid_file(&self) -> PathBuf {
        self.dir.join("run").join(format!("{}.pid", self.name))
    }

    pub fn log_file(&self) -> PathBuf {
        self.dir.join("logs").join(format!("{}.log", self.name))
    }

    /// Where the process that spawned the component writes how it exited.
    fn exit_file(&self) -> PathBuf {
        self.dir.join("run").join(format!("{}.exit", self.name))
    }

    /// Starts `program args...` in its own process group (so a Ctrl-C aimed at the caller does
    /// not take the control plane down with it) with output appended to the component's log.
    pub fn spawn(&self, program: &Path, args: &[String]) -> Result<u32> {
        fs::create_dir_all(self.dir.join("run"))?;
        fs::create_dir_all(self.dir.join("logs"))?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_file())?;
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .with_context(|| format!("starting {}", program.display()))?;
        let pid = child.id();
        let exit_file = self.exit_file();
        let _ = fs::remove_file(&exit_file);
        fs::write(self.pid_file(), pid.to_string())?;
        // Reap the child if it exits while we are still alive, so it never lingers as a zombie
        // that would look alive to `status`; what it exited with goes into the exit report.
        thread::spawn(move || {
            if let Ok(status) = child.wait() {
                let _ = fs::write(exit_file, status.to_string());
            }
        });
        Ok(pid)
    }

    /// The pid of the running component, if any.
    pub fn running(&self) -> Option<u32> {
        let pid: u32 = fs::read_to_string(self.pid_file())
            .ok()?
            .trim()
            .parse()
            .ok()?;
        let alive = kill(Pid::from_raw(pid as i32), None).is_ok()
            && !is_zombie(pid)
            && belongs_to(pid, self.dir);
        alive.then_some(pid)
    }

    /// Stops the component: SIGTERM, then SIGKILL after a grace period.
    pub fn stop(&self, grace: Duration) -> Result<()> {
        if let Some(pid) = self.running() {
            let pid = Pid::from_raw(pid as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let deadline = Instant::now() + grace;
            while self.running().is_some() {
                if Instant::now() > deadline {
                    let _ = kill(pid, Signal::SIGKILL);
                    thread::sleep(Duration::from_millis(100));
                    if self.running().is_some() {
                        bail!("{} (pid {pid}) did not stop", self.name);
                    }
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = fs::remove_file(self.pid_file());
        Ok(())
    }

    /// Why the component is no longer running, for error messages: its exit status (when this
    /// process started it) and the last lines of its log, e.g. `kube-apiserver exited (exit
    /// status: 1); last lines of …/kube-apiserver.log:` and the lines.
    pub fn exit_report(&self) -> String {
        // The reaper thread writes the status right after the process is gone.
        let deadline = Instant::now() + Duration::from_secs(1);
        let status = loop {
            match fs::read_to_string(self.exit_file()) {
                Ok(status) => break status,
                Err(_) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
                Err(_) => break "status unknown: not started by this process".to_owned(),
            }
        };
        let log = self.log_file();
        let tail = self.log_tail(20);
        if tail.trim().is_empty() {
            format!(
                "{} exited ({status}); its log {} is empty",
                self.name,
                log.display()
            )
        } else {
            format!(
                "{} exited ({status}); last lines of {}:\n{tail}",
                self.name,
                log.display()
            )
        }
    }

    /// The last lines of the component's log, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = fs::read_to_string(self.log_file()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

fn is_zombie(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|stat| {
            stat.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}

/// Guards against a recycled pid: our components always get the sandbox dir on their command line.
fn belongs_to(pid: u32, dir: &Path) -> bool {
    let needle = dir.as_os_str().as_encoded_bytes();
    // A process in the middle of execve (just spawned, or `env` starting the registry) shows an
    // empty command line until the kernel has set up its new arguments, which on a loaded machine
    // can take longer than half a second: wait for them, but not for a process that is exiting.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let Ok(cmdline) = fs::read(format!("/proc/{pid}/cmdline")) else {
            return false;
        };
        if !cmdline.is_empty() {
            return cmdline.windows(needle.len()).any(|w| w == needle);
        }
        if is_zombie(pid) || Instant::now() > deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component that execs again right away (as `env` starting the registry does) is running
    /// the moment `spawn` returns, also while its command line is being replaced.
    #[test]
    fn a_component_is_running_from_the_moment_it_is_spawned() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let component = Component {
            name: "sleeper",
            dir: dir.path(),
        };
        let followed = dir.path().join("followed");
        fs::write(&followed, "")?;
        let args = [
            "-i".to_string(),
            "/usr/bin/tail".to_string(),
            "-f".to_string(),
            followed.display().to_string(),
        ];
        for round in 0..100 {
            component.spawn(Path::new("/usr/bin/env"), &args)?;
            assert!(component.running().is_some(), "round {round}");
            component.stop(Duration::from_secs(5))?;
        }
        Ok(())
    }

    #[test]
    fn the_exit_report_says_how_a_component_exited_and_what_it_logged() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let component = Component {
            name: "failing",
            dir: dir.path(),
        };
        let script = |s: &str| ["-c".to_string(), s.to_string()];
        component.spawn(Path::new("/bin/sh"), &script("echo 'bad flag --x'; exit 3"))?;
        while component.running().is_some() {
            thread::sleep(Duration::from_millis(20));
        }
        let log = component.log_file();
        assert_eq!(
            component.exit_report(),
            format!(
                "failing exited (exit status: 3); last lines of {}:\nbad flag --x",
                log.display()
            )
        );

        component.spawn(Path::new("/bin/sh"), &script("kill -9 $$"))?;
        while component.running().is_some() {
            thread::sleep(Duration::from_millis(20));
        }
        fs::write(&log, "")?;
        assert_eq!(
            component.exit_report(),
            format!(
                "failing exited (signal: 9 (SIGKILL)); its log {} is empty",
                log.display()
            )
        );
        Ok(())
    }
}
