//! Argo CD's source tree at the release pinned as `ARGOCD_VERSION` in tools/versions.env, from
//! the Go module cache (scripts/toolchain puts it there when it builds the argocd CLI; `go mod
//! download` fetches it from the module proxy otherwise). Conformance tests read Argo CD's own
//! test data from it — its `resource_customizations` health checks and actions — instead of a
//! copy in this repository.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

const MODULE: &str = "github.com/argoproj/argo-cd/v3";

/// The pinned release, e.g. `v3.2.11`.
pub fn version() -> Result<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tools/versions.env");
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .find_map(|line| line.strip_prefix("ARGOCD_VERSION="))
        .map(|v| v.trim().to_owned())
        .with_context(|| format!("{} sets no ARGOCD_VERSION", path.display()))
}

/// The directory of Argo CD's module at the pinned release (read-only, in the module cache).
pub fn dir() -> Result<PathBuf> {
    let version = version()?;
    // Outside any module, so that no go.mod of this repository takes part.
    let cwd = tempfile::tempdir()?;
    let output = Command::new("go")
        .args(["mod", "download", "-json", &format!("{MODULE}@{version}")])
        .current_dir(cwd.path())
        .env_remove("GOFLAGS")
        .output()
        .context("running go mod download (is Go installed? scripts/setup installs it)")?;
    let answer: serde_json::Value = serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "go mod download {MODULE}@{version}: {}",
            String::from_utf8_lossy(&output.stderr)
        )
    })?;
    if let Some(error) = answer.get("Error").and_then(|e| e.as_str()) {
        bail!("go mod download {MODULE}@{version}: {error}");
    }
    let dir = answer
        .get("Dir")
        .and_then(|d| d.as_str())
        .with_context(|| format!("go mod download {MODULE}@{version} gave no directory"))?;
    Ok(PathBuf::from(dir))
}

/// `resource_customizations` of the pinned release: `<group>/<kind>/health.lua` with
/// `health_test.yaml`, and `actions/` with `discovery.lua`, `<action>/action.lua` and
/// `action_test.yaml`, each beside its `testdata/`.
pub fn resource_customizations() -> Result<PathBuf> {
    let dir = dir()?.join("resource_customizations");
    if !dir.is_dir() {
        bail!("{} is missing", dir.display());
    }
    Ok(dir)
}
