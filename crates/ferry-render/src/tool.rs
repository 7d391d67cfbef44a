//! Running external tools (helm, kustomize, plugins): scrubbed environment, private home,
//! timeout that kills the whole process group, and a count of invocations.
//!
//! Every tool, and every `git` it starts (kustomize clones remote bases with the git CLI, Helm
//! and plugins may), runs with git's local transport switched off: `GIT_ALLOW_PROTOCOL` lists
//! the network protocols only, which git applies to `file://` URLs and plain local paths alike
//! (both are its `file` protocol), and `protocol.file.allow=never` says the same in git's
//! configuration. So no kustomization, however it is nested or fetched, can clone another
//! tenant's checkout or a Git mirror from this machine's disk.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::error::ErrorKind;

/// How much of a failing tool's stderr goes into the error.
const STDERR_LIMIT: usize = 4096;

/// The directories every tool may find helpers (`sh`, `git`) in, after the tool's own directory.
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The git protocols tools may fetch with: the network ones. Not `file` (local paths and
/// `file://` URLs), nor `ext` (arbitrary commands).
const GIT_NETWORK_PROTOCOLS: &str = "http:https:ssh:git";

pub(crate) struct ToolRunner {
    timeout: Duration,
    runs: AtomicU64,
    /// Whether git may fetch from local paths (`ferry render --allow-local-remotes` only).
    allow_local_git: bool,
}

/// One command to run.
pub(crate) struct Invocation<'a> {
    /// Name for messages ("helm template", "plugin foo").
    pub tool: String,
    pub program: &'a Path,
    pub args: Vec<OsString>,
    pub cwd: &'a Path,
    /// Private directory used as HOME and for the tools' caches and config.
    pub home: &'a Path,
    /// Extra environment on top of the scrubbed base.
    pub env: Vec<(String, String)>,
}

impl ToolRunner {
    /// A runner whose tools' git may not use the local `file` transport unless
    /// `allow_local_git`.
    pub(crate) fn new(timeout: Duration, allow_local_git: bool) -> Self {
        Self {
            timeout,
            runs: AtomicU64::new(0),
            allow_local_git,
        }
    }

    /// How many tool processes were started.
    pub(crate) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs the command and returns its stdout; a non-zero exit, a timeout or a start failure is
    /// an error carrying (the start of) stderr.
    pub(crate) async fn run(&self, inv: Invocation<'_>) -> Result<String, ErrorKind> {
        self.run_with_input(inv, None).await
    }

    /// [`Self::run`] with `input` on the tool's stdin: how secrets reach a tool without showing
    /// in process listings.
    pub(crate) async fn run_with_input(
        &self,
        inv: Invocation<'_>,
        input: Option<&[u8]>,
    ) -> Result<String, ErrorKind> {
        let mut cmd = tokio::process::Command::new(inv.program);
        cmd.args(&inv.args)
            .current_dir(inv.cwd)
            .env_clear()
            .envs(base_env(inv.program, inv.home, self.allow_local_git))
            .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(if input.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so a timeout also kills whatever the tool started.
            .process_group(0)
            .kill_on_drop(true);
        tracing::debug!(tool = %inv.tool, program = %inv.program.display(), args = ?inv.args, cwd = %inv.cwd.display(), "running tool");
        let start = |error| ErrorKind::ToolStart {
            tool: inv.tool.clone(),
            program: inv.program.display().to_string(),
            error,
        };
        let mut child = cmd.spawn().map_err(start)?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let pid = child.id();
        let mut stdout = child.stdout.take().expect("piped");
        let mut stderr = child.stderr.take().expect("piped");
        let stdin = child.stdin.take();
        let work = async {
            let mut out = Vec::new();
            let mut err = Vec::new();
            let feed = async {
                if let (Some(mut stdin), Some(input)) = (stdin, input) {
                    // A tool that exits without reading is judged by its exit status and
                    // stderr, not by the broken pipe; dropping stdin closes it.
                    let _ = stdin.write_all(input).await;
                }
            };
            let ((), o, e, status) = tokio::join!(
                feed,
                stdout.read_to_end(&mut out),
                stderr.read_to_end(&mut err),
                child.wait()
            );
            o.and(e).map_err(start)?;
            Ok::<_, ErrorKind>((status.map_err(start)?, out, err))
        };
        let (status, out, err) = match tokio::time::timeout(self.timeout, work).await {
            Ok(result) => result?,
            Err(_) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                return Err(ErrorKind::ToolTimeout {
                    tool: inv.tool,
                    timeout: self.timeout,
                });
            }
        };
        if !status.success() {
            let mut stderr = String::from_utf8_lossy(&err).trim().to_string();
            if stderr.len() > STDERR_LIMIT {
                let cut = (0..=STDERR_LIMIT)
                    .rev()
                    .find(|i| stderr.is_char_boundary(*i));
                stderr.truncate(cut.unwrap_or(0));
                stderr.push_str(" …");
            }
            return Err(ErrorKind::ToolFailed {
                tool: inv.tool,
                status: status.to_string(),
                stderr,
            });
        }
        String::from_utf8(out).map_err(|_| ErrorKind::ToolFailed {
            tool: inv.tool,
            status: "ok".into(),
            stderr: "output is not UTF-8".into(),
        })
    }
}

/// The whole environment a tool starts with: nothing of ferry's own environment (credentials,
/// tokens, proxies) leaks in; HOME and every cache/config directory point into a private dir;
/// git may not read local repositories unless `allow_local_git`.
fn base_env(program: &Path, home: &Path, allow_local_git: bool) -> Vec<(String, OsString)> {
    let mut path = OsString::new();
    if let Some(dir) = program.parent().filter(|d| !d.as_os_str().is_empty()) {
        path.push(dir);
        path.push(":");
    }
    path.push(SYSTEM_PATH);
    let sub = |s: &str| home.join(s).into_os_string();
    let mut env = vec![
        ("PATH".into(), path),
        ("HOME".into(), home.as_os_str().to_owned()),
        ("TMPDIR".into(), sub("tmp")),
        ("XDG_CACHE_HOME".into(), sub(".cache")),
        ("XDG_CONFIG_HOME".into(), sub(".config")),
        ("XDG_DATA_HOME".into(), sub(".local/share")),
        ("HELM_CACHE_HOME".into(), sub(".cache/helm")),
        ("HELM_CONFIG_HOME".into(), sub(".config/helm")),
        ("HELM_DATA_HOME".into(), sub(".local/share/helm")),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    if !allow_local_git {
        env.extend([
            // Overrides any protocol configuration; git counts plain paths as `file` too.
            ("GIT_ALLOW_PROTOCOL".into(), GIT_NETWORK_PROTOCOLS.into()),
            ("GIT_CONFIG_COUNT".into(), "1".into()),
            ("GIT_CONFIG_KEY_0".into(), "protocol.file.allow".into()),
            ("GIT_CONFIG_VALUE_0".into(), "never".into()),
        ]);
    }
    env
}

fn kill_group(pid: u32) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    if let Ok(pid) = i32::try_from(pid) {
        // The group may already be gone; nothing else to do then.
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Finds `name` in `PATH` when it is a bare command name.
pub(crate) fn locate(program: &Path) -> PathBuf {
    if program.components().count() > 1 {
        return program.to_path_buf();
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str, home: &Path) -> Invocation<'static> {
        Invocation {
            tool: "sh".into(),
            program: Path::new("/bin/sh"),
            args: vec!["-c".into(), script.into()],
            cwd: Path::new("/"),
            home: Box::leak(home.to_path_buf().into_boxed_path()),
            env: vec![("EXTRA".into(), "1".into())],
        }
    }

    #[tokio::test]
    async fn environment_is_scrubbed_and_home_is_private() {
        let home = tempfile::tempdir().unwrap();
        let runner = ToolRunner::new(Duration::from_secs(10), false);
        let out = runner.run(sh("env | sort", home.path())).await.unwrap();
        let names: Vec<&str> = out.lines().map(|l| l.split('=').next().unwrap()).collect();
        for name in &names {
            assert!(
                [
                    "PATH", "HOME", "TMPDIR", "EXTRA", "LANG", "PWD", "SHLVL", "_"
                ]
                .contains(name)
                    || name.starts_with("XDG_")
                    || name.starts_with("HELM_")
                    || name.starts_with("GIT_"),
                "unexpected variable {name} in {out}"
            );
        }
        assert!(out.contains(&format!("HOME={}", home.path().display())));
        assert_eq!(runner.runs(), 1);
    }

    /// A bare repository with one commit, next to the tools' home: what another tenant's
    /// checkout or a Git mirror looks like on disk.
    fn local_repository(dir: &Path) -> PathBuf {
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(dir)
                .env("HOME", dir)
                .env("GIT_CONFIG_NOSYSTEM", "1")
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        git(&["init", "-q", "-b", "main", "work"]);
        std::fs::write(dir.join("work/secret.yaml"), "team-b: secret").unwrap();
        git(&["-C", "work", "add", "."]);
        git(&[
            "-C",
            "work",
            "-c",
            "user.name=b",
            "-c",
            "user.email=b@b",
            "commit",
            "-qm",
            "b",
        ]);
        git(&["clone", "-q", "--bare", "work", "team-b.git"]);
        dir.join("team-b.git")
    }

    #[tokio::test]
    async fn git_in_tools_cannot_read_local_repositories() {
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join("tmp")).unwrap();
        let other = tempfile::tempdir().unwrap();
        let bare = local_repository(other.path());
        let runner = ToolRunner::new(Duration::from_secs(30), false);
        // Plain paths and file:// URLs are both git's `file` transport; clone and kustomize's
        // init + fetch are both refused, whatever the configuration says.
        for url in [
            bare.display().to_string(),
            format!("file://{}", bare.display()),
        ] {
            for script in [
                format!("git clone -q {url} copy"),
                format!(
                    "git init -q f && cd f && git remote add origin {url} && \
                     git -c protocol.file.allow=always fetch -q --depth=1 origin main"
                ),
            ] {
                let err = runner
                    .run(sh(
                        &format!("cd \"$TMPDIR\" && rm -rf f copy && {script}"),
                        home.path(),
                    ))
                    .await
                    .unwrap_err();
                assert!(
                    err.to_string().contains("transport 'file' not allowed"),
                    "{script}: {err}"
                );
            }
        }
        assert!(!home.path().join("tmp/copy/secret.yaml").exists());

        // `ferry render --allow-local-remotes`: the same clone works.
        let local = ToolRunner::new(Duration::from_secs(30), true);
        local
            .run(sh(
                &format!(
                    "cd \"$TMPDIR\" && git clone -q file://{} copy",
                    bare.display()
                ),
                home.path(),
            ))
            .await
            .unwrap();
        assert!(home.path().join("tmp/copy/secret.yaml").exists());
    }

    #[tokio::test]
    async fn input_reaches_stdin() {
        let home = tempfile::tempdir().unwrap();
        let runner = ToolRunner::new(Duration::from_secs(10), false);
        let out = runner
            .run_with_input(sh("cat", home.path()), Some(b"s3cret"))
            .await
            .unwrap();
        assert_eq!(out, "s3cret");
        // Without input, stdin is empty rather than the caller's.
        assert_eq!(runner.run(sh("cat", home.path())).await.unwrap(), "");
    }

    #[tokio::test]
    async fn failure_carries_stderr() {
        let home = tempfile::tempdir().unwrap();
        let runner = ToolRunner::new(Duration::from_secs(10), false);
        let err = runner
            .run(sh("echo bad input >&2; exit 3", home.path()))
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "sh failed (exit status: 3): bad input");
    }

    #[tokio::test]
    async fn timeout_kills_the_process_group() {
        let home = tempfile::tempdir().unwrap();
        let marker = home.path().join("survived");
        let runner = ToolRunner::new(Duration::from_millis(300), false);
        let script = format!("(sleep 2; touch {}) & sleep 5", marker.display());
        let started = std::time::Instant::now();
        let err = runner.run(sh(&script, home.path())).await.unwrap_err();
        assert!(matches!(err, ErrorKind::ToolTimeout { .. }), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            !marker.exists(),
            "a child of the timed-out tool kept running"
        );
    }
}
