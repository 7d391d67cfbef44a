//! What a real node changes on the host, and putting it back: one sandbox at a time claims the
//! host's real node; the claim records the sysctls the kubelet, kube-proxy and the bridge plugin
//! write, the iptables chains and the kubelet's cgroups that existed, so releasing it restores the
//! first and removes the chains they added (with the rules jumping to them), the cgroups and the
//! pod bridge.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use super::{cni, run};
use crate::process::Component;

/// Host-wide, and gone after a reboot like everything the node changed.
const CLAIM_DIR: &str = "/run/ferry-sandbox";
const CLAIM_FILE: &str = "real-node.json";

/// Sysctls the kubelet sets to its liking (kernel panics, overcommit, keyrings) and the bridge
/// plugin turns on (forwarding).
const SYSCTLS: &[&str] = &[
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
];

const IPTABLES: &[&str] = &["iptables", "ip6tables"];
const TABLES: &[&str] = &["filter", "nat", "mangle"];

/// Chains of the kubelet, kube-proxy and the CNI plugins.
fn ours(chain: &str) -> bool {
    chain.starts_with("KUBE-") || chain.starts_with("CNI-")
}

/// Takes the host's real node for the sandbox in `dir` (named `name`). Fails, naming the owner,
/// while another sandbox's real node runs; a claim left by a sandbox that no longer runs is
/// released (its host changes undone) and taken over.
pub fn claim(name: &str, dir: &Path) -> Result<()> {
    let _lock = lock()?;
    if let Some(claim) = read()? {
        let owner = PathBuf::from(claim["dir"].as_str().unwrap_or_default());
        if owner == dir {
            return Ok(());
        }
        let alive = ["kubelet", "containerd"]
            .iter()
            .any(|name| Component { name, dir: &owner }.running().is_some());
        if alive {
            bail!(
                "this host's real node belongs to sandbox {:?} ({}); only one sandbox can run a \
                 real node at a time: stop it first with `ferry-sandbox --name {} down`",
                claim["sandbox"].as_str().unwrap_or_default(),
                owner.display(),
                claim["sandbox"].as_str().unwrap_or_default(),
            );
        }
        restore(&claim)?;
    }
    let claim = json!({
        "sandbox": name,
        "dir": dir,
        "sysctls": sysctls(),
        "chains": chains()?,
        "cgroups": kubelet_cgroups(),
    });
    let path = claim_path();
    fs::write(&path, serde_json::to_vec_pretty(&claim)?)
        .with_context(|| format!("writing {}", path.display()))
}

/// Undoes the host changes and gives up the claim, if the sandbox in `dir` holds it.
pub fn release(dir: &Path) -> Result<()> {
    if !claim_path().exists() {
        return Ok(());
    }
    let _lock = lock()?;
    match read()? {
        Some(claim) if claim["dir"].as_str() == Some(&dir.display().to_string()) => {
            restore(&claim)?;
            fs::remove_file(claim_path())?;
            Ok(())
        }
        _ => Ok(()),
    }
}

fn claim_path() -> PathBuf {
    Path::new(CLAIM_DIR).join(CLAIM_FILE)
}

fn lock() -> Result<File> {
    fs::create_dir_all(CLAIM_DIR).with_context(|| format!("creating {CLAIM_DIR}"))?;
    let lock = File::create(Path::new(CLAIM_DIR).join("real-node.lock"))?;
    lock.lock()?;
    Ok(lock)
}

fn read() -> Result<Option<Value>> {
    match fs::read(claim_path()) {
        Ok(bytes) => {
            Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("reading {}", claim_path().display())
            })?))
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(err.into()),
    }
}

fn sysctls() -> Value {
    SYSCTLS
        .iter()
        .filter_map(|key| {
            let value = fs::read_to_string(Path::new("/proc/sys").join(key)).ok()?;
            Some((key.to_string(), Value::from(value.trim())))
        })
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The chains of every table, as `<tool> <table>` → names.
fn chains() -> Result<Value> {
    let mut all = serde_json::Map::new();
    for tool in IPTABLES {
        for table in TABLES {
            let Some(dump) = save(tool, table) else {
                continue;
            };
            let names: Vec<String> = declared_chains(&dump).into_iter().collect();
            all.insert(format!("{tool} {table}"), names.into());
        }
    }
    Ok(all.into())
}

/// `<tool>-save` of one table; `None` where the tool or the table does not exist.
fn save(tool: &str, table: &str) -> Option<String> {
    let output = Command::new(format!("{tool}-save"))
        .args(["-t", table])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

fn declared_chains(dump: &str) -> BTreeSet<String> {
    dump.lines()
        .filter_map(|line| line.strip_prefix(':'))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn restore(claim: &Value) -> Result<()> {
    let mut failures = Vec::new();
    if let Some(sysctls) = claim["sysctls"].as_object() {
        for (key, value) in sysctls {
            let path = Path::new("/proc/sys").join(key);
            let current = fs::read_to_string(&path).unwrap_or_default();
            let Some(value) = value.as_str() else {
                continue;
            };
            if current.trim() != value && fs::write(&path, value).is_err() {
                failures.push(format!("sysctl {key}={value}"));
            }
        }
    }
    for tool in IPTABLES {
        for table in TABLES {
            let before: BTreeSet<&str> = claim["chains"][format!("{tool} {table}")]
                .as_array()
                .map(|names| names.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Err(err) = remove_chains(tool, table, &before) {
                failures.push(format!("{tool} -t {table}: {err:#}"));
            }
        }
    }
    let cgroups_before: Vec<&str> = claim["cgroups"]
        .as_array()
        .map(|dirs| dirs.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    for dir in kubelet_cgroups() {
        if !cgroups_before.contains(&dir.as_str())
            && let Err(err) = remove_cgroup(Path::new(&dir))
        {
            failures.push(format!("cgroup {dir}: {err:#}"));
        }
    }
    if Path::new("/sys/class/net").join(cni::BRIDGE).exists()
        && let Err(err) = run(Command::new("ip").args(["link", "delete", cni::BRIDGE]))
    {
        failures.push(format!("bridge {}: {err:#}", cni::BRIDGE));
    }
    if !failures.is_empty() {
        bail!("could not restore the host: {}", failures.join("; "));
    }
    Ok(())
}

/// The kubelet's `kubepods` cgroups: in every v1 hierarchy, or at the v2 root.
fn kubelet_cgroups() -> Vec<String> {
    let root = Path::new("/sys/fs/cgroup");
    let hierarchies = fs::read_dir(root)
        .map(|dir| dir.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_else(|_| Vec::new());
    std::iter::once(root.to_path_buf())
        .chain(hierarchies)
        .map(|dir| dir.join("kubepods"))
        .filter(|dir| dir.is_dir())
        .map(|dir| dir.display().to_string())
        .collect()
}

/// Removes a cgroup and its children, deepest first (a cgroup goes only once it has none; the
/// files in it are the kernel's and go with it). A container left running in it (a pod whose
/// removal failed or raced with the kubelet's last start on a loaded machine) is killed first:
/// these cgroups are the node's own, made after the claim.
fn remove_cgroup(dir: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = processes_in(dir);
        if left.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            bail!("processes {left:?} in {} did not exit", dir.display());
        }
        for pid in left {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        thread::sleep(Duration::from_millis(100));
    }
    remove_empty_cgroup(dir)
}

/// The processes in a cgroup and its children.
fn processes_in(dir: &Path) -> Vec<i32> {
    let mut pids: Vec<i32> = fs::read_to_string(dir.join("cgroup.procs"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.trim().parse().ok())
        .collect();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            pids.extend(processes_in(&entry.path()));
        }
    }
    pids
}

fn remove_empty_cgroup(dir: &Path) -> Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_empty_cgroup(&entry.path())?;
        }
    }
    fs::remove_dir(dir).with_context(|| format!("removing {}", dir.display()))
}

/// Deletes the node's chains that were not there before, and the rules of older chains that jump
/// to them, in one `<tool>-restore --noflush` transaction.
fn remove_chains(tool: &str, table: &str, before: &BTreeSet<&str>) -> Result<()> {
    let Some(dump) = save(tool, table) else {
        return Ok(());
    };
    let added: BTreeSet<String> = declared_chains(&dump)
        .into_iter()
        .filter(|chain| ours(chain) && !before.contains(chain.as_str()))
        .collect();
    if added.is_empty() {
        return Ok(());
    }
    let mut script = format!("*{table}\n");
    for rule in dump.lines().filter_map(|line| line.strip_prefix("-A ")) {
        let mut words = rule.split_whitespace();
        let chain = words.next().unwrap_or_default();
        let jumps_to_added = rule
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .any(|w| matches!(w[0], "-j" | "-g") && added.contains(w[1]));
        if !added.contains(chain) && jumps_to_added {
            script.push_str(&format!("-D {rule}\n"));
        }
    }
    for chain in &added {
        script.push_str(&format!("-F {chain}\n"));
    }
    for chain in &added {
        script.push_str(&format!("-X {chain}\n"));
    }
    script.push_str("COMMIT\n");
    let mut child = Command::new(format!("{tool}-restore"))
        .args(["--noflush", "--wait"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(script.as_bytes())?;
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!("{}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(())
}
