//! Resource figures of this process and others, and the frame of benchmark programs.

use anyhow::{Context, Result};

/// A memory figure of this process from /proc/self/status (`VmRSS`, `VmHWM`, ...), in bytes.
pub fn status_bytes(field: &str) -> Result<usize> {
    status_bytes_at("/proc/self/status", field)
}

/// [`status_bytes`] of another process, such as a controller a benchmark started.
pub fn pid_status_bytes(pid: u32, field: &str) -> Result<usize> {
    status_bytes_at(&format!("/proc/{pid}/status"), field)
}

fn status_bytes_at(path: &str, field: &str) -> Result<usize> {
    let status = std::fs::read_to_string(path)?;
    let line = status
        .lines()
        .find(|line| {
            line.strip_prefix(field)
                .is_some_and(|rest| rest.starts_with(':'))
        })
        .with_context(|| format!("no {field} in {path}"))?;
    let kib: usize = line
        .split_whitespace()
        .nth(1)
        .with_context(|| format!("malformed {field}"))?
        .parse()?;
    Ok(kib * 1024)
}

/// CPU seconds (user and system) this process has used.
pub fn cpu_seconds() -> Result<f64> {
    cpu_seconds_at("/proc/self/stat")
}

/// [`cpu_seconds`] of another process, such as the sandbox's kube-apiserver.
pub fn pid_cpu_seconds(pid: u32) -> Result<f64> {
    cpu_seconds_at(&format!("/proc/{pid}/stat"))
}

fn cpu_seconds_at(path: &str) -> Result<f64> {
    let stat = std::fs::read_to_string(path)?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = stat
        .rsplit_once(')')
        .with_context(|| format!("malformed {path}"))?
        .1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields[11].parse::<f64>()? + fields[12].parse::<f64>()?;
    // Linux reports in clock ticks, 100 per second on every platform Rust supports here.
    Ok(ticks / 100.0)
}

/// Bytes as MiB with one decimal, for reports.
pub fn mib(bytes: usize) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// What a benchmark program does around its measurements: logs to stderr (`FERRY_LOG`, default
/// `warn`), a fresh sandbox named `name`, `run` with a client of it, then the sandbox stopped
/// unless `keep`.
pub async fn on_fresh_sandbox<F, Fut>(name: &str, keep: bool, run: F) -> Result<()>
where
    F: FnOnce(kube::Client) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FERRY_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let sandbox = ferry_sandbox::Sandbox::named(name)?;
    sandbox.down()?;
    sandbox.up(&ferry_sandbox::UpOptions::default()).await?;
    let result = run(sandbox.client().await?).await;
    if !keep {
        sandbox.down()?;
    }
    result
}

/// The stdout and stderr of a finished command, as text.
pub fn texts(out: &std::process::Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The stdout of `what`, which must have succeeded (else a panic showing both outputs).
pub fn succeeded(what: &str, out: &std::process::Output) -> String {
    let (stdout, stderr) = texts(out);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{stderr}\n{stdout}",
        out.status
    );
    stdout
}

/// The stderr of `what`, which must have failed (else a panic showing its stdout).
pub fn failed(what: &str, out: &std::process::Output) -> String {
    let (stdout, stderr) = texts(out);
    assert!(!out.status.success(), "{what} succeeded:\n{stdout}");
    stderr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_memory() {
        let rss = status_bytes("VmRSS").unwrap();
        assert!(rss > 1024 * 1024, "{rss}");
        assert!(status_bytes("NoSuchField").is_err());
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5 MiB");
    }
}
