//! Shared test support: real tools from ferry's toolchain, a renderer over a private Git cache,
//! and helpers to run the tools directly for expected output.

#![allow(dead_code)] // each test binary uses a different subset

pub mod charts;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ferry_git::{Credentials, RepoCache};
use ferry_render::{AppContext, JsonnetWorker, PluginConfig, RenderConfig, Renderer};
use ferry_types::source::ApplicationSource;
use serde_json::Value;

/// The toolchain's bin directory (`scripts/toolchain --print`).
pub fn toolchain_bin() -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/toolchain");
    let out = Command::new(script)
        .arg("--print")
        .output()
        .expect("scripts/toolchain runs");
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// A tool from the toolchain; the test fails (not skips) when it is missing.
pub fn tool(name: &str) -> PathBuf {
    let path = toolchain_bin().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it with scripts/toolchain",
        path.display()
    );
    path
}

pub struct Harness {
    pub renderer: Renderer,
    _dirs: Vec<tempfile::TempDir>,
}

pub fn harness(plugins: Vec<PluginConfig>) -> Harness {
    harness_with(plugins, Credentials::default())
}

/// [`harness`] with repository credentials, as the repository Secrets give them.
pub fn harness_with(plugins: Vec<PluginConfig>, credentials: Credentials) -> Harness {
    harness_configured(credentials, |config| config.plugins = plugins)
}

/// A renderer whose configuration `change` adjusts (build options, local remotes...).
pub fn harness_configured(
    credentials: Credentials,
    change: impl FnOnce(&mut RenderConfig),
) -> Harness {
    let git_dir = tempfile::tempdir().unwrap();
    let work_dir = tempfile::tempdir().unwrap();
    let git = Arc::new(RepoCache::new(git_dir.path().join("cache"), credentials));
    let mut config = RenderConfig {
        helm: tool("helm"),
        kustomize: tool("kustomize"),
        work_dir: work_dir.path().to_path_buf(),
        jsonnet_worker: jsonnet_worker(),
        ..RenderConfig::default()
    };
    change(&mut config);
    Harness {
        renderer: Renderer::new(git, config),
        _dirs: vec![git_dir, work_dir],
    }
}

/// This crate's `ferry-jsonnet` binary, which cargo builds for the integration tests.
pub fn jsonnet_worker() -> JsonnetWorker {
    JsonnetWorker {
        program: env!("CARGO_BIN_EXE_ferry-jsonnet").into(),
        args: Vec::new(),
    }
}

pub fn app(name: &str, namespace: &str) -> AppContext {
    AppContext {
        name: name.into(),
        namespace: namespace.into(),
        ..Default::default()
    }
}

/// Sources from Application YAML (`spec.sources` items).
pub fn sources(yaml: &str) -> Vec<ApplicationSource> {
    serde_yaml::from_str(yaml).unwrap()
}

/// Runs `program args` in `cwd` with a private HOME and returns stdout; panics with stderr.
pub fn run(program: &Path, args: &[&str], cwd: &Path) -> String {
    let home = tempfile::tempdir().unwrap();
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env("HOME", home.path())
        .env("HELM_CACHE_HOME", home.path().join("cache"))
        .env("HELM_CONFIG_HOME", home.path().join("config"))
        .env("HELM_DATA_HOME", home.path().join("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} {args:?} failed: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The Kubernetes objects of a YAML stream (empty documents skipped).
pub fn objects(yaml: &str) -> Vec<Value> {
    use serde::Deserialize;
    serde_yaml::Deserializer::from_str(yaml)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

/// A copy of a directory tree (without `.git`), for running tools on the expected side.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".git" {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let ty = entry.file_type().unwrap();
        if ty.is_dir() {
            copy_tree(&src, &dst);
        } else if ty.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src).unwrap(), &dst).unwrap();
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// `metadata.name` of each object, for readable assertions.
pub fn names(objs: &[Value]) -> Vec<String> {
    objs.iter()
        .map(|o| {
            format!(
                "{}/{}",
                o["kind"].as_str().unwrap_or("?"),
                o["metadata"]["name"].as_str().unwrap_or("?")
            )
        })
        .collect()
}
