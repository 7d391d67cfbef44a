//! Running external tools (helm, kustomize, plugins, the Jsonnet worker): scrubbed environment,
//! private home, and bounds on what a tool may take: a timeout and an output limit (stdout and
//! stderr each) that kill the whole process group, and a memory limit on every process
//! (`RLIMIT_DATA`, set before the tool starts and inherited by what it starts). Also a count of
//! invocations.
//!
//! The memory limit is the data limit rather than the address-space limit (`RLIMIT_AS`): Go
//! programs (helm, kustomize) reserve far more address space than they use, and fail at start
//! under an address-space limit a real render never needs; the data limit counts the private
//! writable memory a process actually maps (heap, anonymous mappings, thread stacks). Go
//! binaries need about 100 MiB of it to start.
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

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::error::ErrorKind;
use crate::limits;

/// How much of a failing tool's stderr goes into the error.
const STDERR_LIMIT: usize = 4096;

/// The directories every tool may find helpers (`sh`, `git`) in, after the tool's own directory.
const SYSTEM_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// The git protocols tools may fetch with: the network ones. Not `file` (local paths and
/// `file://` URLs), nor `ext` (arbitrary commands).
const GIT_NETWORK_PROTOCOLS: &str = "http:https:ssh:git";

pub(crate) struct ToolRunner {
    timeout: Duration,
    /// Most bytes kept of stdout, and of stderr; more kills the tool.
    max_output: u64,
    /// `RLIMIT_DATA` of every tool process, in bytes.
    max_memory: u64,
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
            max_output: limits::DEFAULT_MAX_TOOL_OUTPUT,
            max_memory: limits::DEFAULT_MAX_TOOL_MEMORY,
            runs: AtomicU64::new(0),
            allow_local_git,
        }
    }

    /// This runner with other output and memory limits (see [`ToolRunner`]'s fields).
    pub(crate) fn with_limits(mut self, max_output: u64, max_memory: u64) -> Self {
        self.max_output = max_output;
        self.max_memory = max_memory;
        self
    }

    /// How many tool processes were started.
    pub(crate) fn runs(&self) -> u64 {
        self.runs.load(Ordering::Relaxed)
    }

    /// Runs the command and returns its stdout; a non-zero exit, a timeout, too much output, a
    /// lack of memory or a start failure is an error (a failure's carries the start of stderr).
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
        let max_memory = self.max_memory;
        // SAFETY: the closure runs in the child between fork and exec; it only makes the
        // getrlimit and setrlimit system calls, which are async-signal-safe, and allocates nothing.
        #[allow(unsafe_code)]
        unsafe {
            cmd.pre_exec(move || limit_data(max_memory));
        }
        tracing::debug!(tool = %inv.tool, program = %inv.program.display(), args = ?inv.args, cwd = %inv.cwd.display(), "running tool");
        let start = |error| ErrorKind::ToolStart {
            tool: inv.tool.clone(),
            program: inv.program.display().to_string(),
            error,
        };
        let mut child = cmd.spawn().map_err(start)?;
        self.runs.fetch_add(1, Ordering::Relaxed);
        let pid = child.id();
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let stdin = child.stdin.take();
        // Reads a stream to its end, or fails as soon as it passes the output limit.
        let read = |stream: &'static str, reader: Box<dyn AsyncRead + Unpin + Send>| {
            let (tool, limit) = (inv.tool.clone(), self.max_output);
            async move {
                let mut kept = Vec::new();
                reader
                    .take(limit.saturating_add(1))
                    .read_to_end(&mut kept)
                    .await
                    .map_err(start)?;
                if kept.len() as u64 > limit {
                    return Err(ErrorKind::ToolOutputTooLarge {
                        tool,
                        stream,
                        limit,
                    });
                }
                Ok(kept)
            }
        };
        let work = async {
            let feed = async {
                if let (Some(mut stdin), Some(input)) = (stdin, input) {
                    // A tool that exits without reading is judged by its exit status and
                    // stderr, not by the broken pipe; dropping stdin closes it.
                    let _ = stdin.write_all(input).await;
                }
                Ok(())
            };
            let ((), out, err, status) = tokio::try_join!(
                feed,
                read("stdout", Box::new(stdout)),
                read("stderr", Box::new(stderr)),
                async { child.wait().await.map_err(start) },
            )?;
            Ok::<_, ErrorKind>((status, out, err))
        };
        let outcome = tokio::time::timeout(self.timeout, work).await;
        let (status, out, err) = match outcome {
            Ok(Ok(done)) => done,
            // Too much output: stop it (and what it started) rather than read on.
            Ok(Err(error)) => {
                if let Some(pid) = pid {
                    kill_group(pid);
                }
                return Err(error);
            }
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
            if out_of_memory(&stderr) {
                return Err(ErrorKind::ToolOutOfMemory {
                    tool: inv.tool,
                    limit: self.max_memory,
                });
            }
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

/// Lowers the calling process's data limit (soft and hard, so the tool cannot raise it) to
/// `bytes`, or to the hard limit it already has when that is lower.
fn limit_data(bytes: u64) -> std::io::Result<()> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_DATA)?;
    let limit = bytes.min(hard);
    setrlimit(Resource::RLIMIT_DATA, limit, limit)?;
    Ok(())
}

/// Whether a failed tool's stderr says it could not get memory: Go's runtime (`fatal error:
/// runtime: out of memory`), Rust's allocator (`memory allocation of N bytes failed`), C
/// programs and shells (`Cannot allocate memory`, `std::bad_alloc`).
fn out_of_memory(stderr: &str) -> bool {
    let stderr = stderr.to_ascii_lowercase();
    stderr.contains("out of memory")
        || (stderr.contains("memory allocation of") && stderr.contains("failed"))
        || stderr.contains("cannot allocate memory")
        || stderr.contains("bad_alloc")
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
        assert_eq!(
            err.to_string(),
            "sh did not finish within 300ms and was killed (--tool-timeout)"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        tokio::time::sleep(Duration::from_millis(2500)).await;
        assert!(
            !marker.exists(),
            "a child of the timed-out tool kept running"
        );
    }

    #[tokio::test]
    async fn output_over_the_limit_kills_the_tool() {
        let home = tempfile::tempdir().unwrap();
        let marker = home.path().join("survived");
        let runner = ToolRunner::new(Duration::from_secs(30), false).with_limits(1 << 20, 1 << 30);
        for (script, stream) in [("yes", "stdout"), ("yes >&2", "stderr")] {
            let script = format!("(sleep 1; touch {}) & {script}", marker.display());
            let started = std::time::Instant::now();
            let err = runner.run(sh(&script, home.path())).await.unwrap_err();
            assert!(
                matches!(&err, ErrorKind::ToolOutputTooLarge { stream: s, limit, .. } if *s == stream && *limit == 1 << 20),
                "{err}"
            );
            assert_eq!(
                err.to_string(),
                format!("sh wrote more than 1 MiB to {stream} and was killed (--max-tool-output)")
            );
            assert!(started.elapsed() < Duration::from_secs(10));
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!marker.exists(), "a child of the killed tool kept running");
        // Up to the limit is fine.
        let out = runner
            .run(sh("head -c 1048576 /dev/zero | tr '\\0' a", home.path()))
            .await
            .unwrap();
        assert_eq!(out.len(), 1 << 20);
    }

    #[tokio::test]
    async fn tools_run_under_the_memory_limit() {
        let home = tempfile::tempdir().unwrap();
        let runner = ToolRunner::new(Duration::from_secs(30), false).with_limits(1 << 20, 64 << 20);
        // `ulimit -d` reports the data limit in KiB, soft and hard alike.
        let soft = runner.run(sh("ulimit -d", home.path())).await.unwrap();
        assert_eq!(soft.trim(), (64 << 10).to_string());
        let hard = runner.run(sh("ulimit -H -d", home.path())).await.unwrap();
        assert_eq!(hard.trim(), (64 << 10).to_string());
        // A tool that wants more fails, and the error says why and what raises the limit.
        let err = runner
            .run(sh(
                "awk 'BEGIN { s = \"x\"; while (1) s = s s }'",
                home.path(),
            ))
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "sh ran out of memory: it may use 64 MiB (--max-tool-memory)"
        );
    }

    #[test]
    fn out_of_memory_is_recognized_in_the_usual_words() {
        for stderr in [
            "fatal error: runtime: out of memory",
            "fatal error: out of memory allocating heap arena map",
            "memory allocation of 4294967296 bytes failed",
            "awk: run time error: out of memory",
            "sh: fork: Cannot allocate memory",
            "terminate called after throwing an instance of 'std::bad_alloc'",
        ] {
            assert!(out_of_memory(stderr), "{stderr}");
        }
        assert!(!out_of_memory(
            "Error: template: web/templates/x.yaml:3: nil pointer"
        ));
    }
}
