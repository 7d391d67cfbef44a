//! The external binaries the sandbox runs, built by `scripts/toolchain` into the cache.

use std::env;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

/// Binaries the sandbox needs.
const REQUIRED: &[&str] = &[
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kwok",
];

/// ferry's cache root, shared with `scripts/toolchain`: `$FERRY_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ferry`, else `~/.cache/ferry`.
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = env::var_os("FERRY_CACHE_DIR") {
        return dir.into();
    }
    let base = env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env::var_os("HOME").unwrap_or_default()).join(".cache"));
    base.join("ferry")
}

/// The directory holding the toolchain's binaries.
pub fn bin_dir() -> PathBuf {
    cache_dir().join("toolchain").join("bin")
}

/// This process's PATH with the toolchain's binaries first, for the processes it starts (a
/// controller renders with the pinned helm and kustomize).
pub fn search_path() -> String {
    format!(
        "{}:{}",
        bin_dir().display(),
        env::var("PATH").unwrap_or_default()
    )
}

/// Returns the bin directory, running `scripts/toolchain` first when a binary is missing (those
/// of a real node too, with `real_node`).
pub fn ensure(real_node: bool) -> Result<PathBuf> {
    let bin = bin_dir();
    let extra = if real_node {
        crate::real_node::TOOLCHAIN
    } else {
        &[]
    };
    if REQUIRED.iter().chain(extra).all(|b| bin.join(b).is_file()) {
        return Ok(bin);
    }
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../scripts/toolchain");
    if !script.is_file() {
        bail!(
            "the sandbox binaries are missing from {} and {} is not there to build them",
            bin.display(),
            script.display()
        );
    }
    let status = Command::new(&script)
        .status()
        .with_context(|| format!("running {}", script.display()))?;
    if !status.success() {
        bail!("{} failed ({status})", script.display());
    }
    Ok(bin)
}
