//! Resource figures of this process and others, and the frame of benchmark programs.

use std::collections::BTreeMap;

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

/// The process id of `sandbox`'s kube-apiserver, for its CPU ([`pid_cpu_seconds`]).
pub fn apiserver_pid(sandbox: &ferry_sandbox::Sandbox) -> Result<u32> {
    sandbox
        .status()
        .into_iter()
        .find(|c| c.name == "kube-apiserver")
        .and_then(|c| c.pid)
        .with_context(|| format!("sandbox {}: kube-apiserver is not running", sandbox.name()))
}

/// The requests a kube-apiserver served, from `apiserver_request_total` of its `/metrics`:
/// summed by verb (dry runs apart), by verb, resource and response code, and the part to
/// argoproj.io. Benchmarks take two and subtract.
#[derive(Debug, Default, Clone)]
pub struct Requests {
    pub by_verb: BTreeMap<String, f64>,
    pub by_resource: BTreeMap<String, f64>,
    pub argoproj: f64,
}

impl Requests {
    /// The counts in a `/metrics` text.
    pub fn parse(metrics: &str) -> Self {
        let mut requests = Self::default();
        for line in metrics.lines() {
            let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
                continue;
            };
            let Some((labels, value)) = rest.rsplit_once("} ") else {
                continue;
            };
            let value: f64 = value.trim().parse().unwrap_or(0.0);
            let label = |name: &str| {
                labels
                    .split(',')
                    .find_map(|pair| pair.strip_prefix(&format!("{name}=\"")))
                    .map(|v| v.trim_end_matches('"').to_string())
                    .unwrap_or_default()
            };
            let mut verb = label("verb");
            if !label("dry_run").is_empty() {
                verb.push_str("(dry-run)");
            }
            let mut resource = label("resource");
            if !label("group").is_empty() {
                resource = format!("{resource}.{}", label("group"));
            }
            if !label("subresource").is_empty() {
                resource = format!("{resource}/{}", label("subresource"));
            }
            let detail = format!("{verb} {resource} {}", label("code"));
            *requests.by_resource.entry(detail).or_default() += value;
            *requests.by_verb.entry(verb).or_default() += value;
            if label("group") == "argoproj.io" {
                requests.argoproj += value;
            }
        }
        requests
    }

    /// The requests served since `before`.
    pub fn minus(&self, before: &Requests) -> Requests {
        let minus = |now: &BTreeMap<String, f64>, then: &BTreeMap<String, f64>| {
            now.iter()
                .map(|(key, n)| (key.clone(), n - then.get(key).unwrap_or(&0.0)))
                .filter(|(_, n)| *n > 0.0)
                .collect()
        };
        Requests {
            by_verb: minus(&self.by_verb, &before.by_verb),
            by_resource: minus(&self.by_resource, &before.by_resource),
            argoproj: self.argoproj - before.argoproj,
        }
    }

    pub fn total(&self) -> f64 {
        self.by_verb.values().sum()
    }

    /// One line: the total, the part to argoproj.io and the count of each verb.
    pub fn describe(&self) -> String {
        let verbs: Vec<String> = self
            .by_verb
            .iter()
            .map(|(verb, n)| format!("{verb} {n:.0}"))
            .collect();
        format!(
            "{:.0} requests ({:.0} to argoproj.io): {}",
            self.total(),
            self.argoproj,
            verbs.join(", ")
        )
    }

    /// Each verb, resource and response code with its count, most first: what each request
    /// is for is then a matter of reading the code that sends it.
    pub fn detail(&self) -> Vec<(&str, f64)> {
        let mut detail: Vec<(&str, f64)> = self
            .by_resource
            .iter()
            .map(|(what, n)| (what.as_str(), *n))
            .collect();
        detail.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(b.0)));
        detail
    }
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

    #[test]
    fn counts_requests_by_verb_and_resource() {
        let before = Requests::parse(
            "apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 2\n",
        );
        let after = Requests::parse(
            "# HELP apiserver_request_total ...\n\
             apiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 5\n\
             apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"argoproj.io\",resource=\"workflows\",scope=\"resource\",subresource=\"\",verb=\"PUT\",version=\"v1alpha1\"} 4\n\
             apiserver_request_total{code=\"200\",component=\"apiserver\",dry_run=\"All\",group=\"\",resource=\"pods\",scope=\"resource\",subresource=\"status\",verb=\"PATCH\",version=\"v1\"} 1\n",
        );
        let served = after.minus(&before);
        assert_eq!(served.total(), 8.0);
        assert_eq!(served.argoproj, 4.0);
        assert_eq!(
            served.detail(),
            [
                ("PUT workflows.argoproj.io 200", 4.0),
                ("POST pods 201", 3.0),
                ("PATCH(dry-run) pods/status 200", 1.0)
            ]
        );
        assert_eq!(
            served.describe(),
            "8 requests (4 to argoproj.io): PATCH(dry-run) 1, POST 3, PUT 4"
        );
    }
}
