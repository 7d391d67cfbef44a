//! The toolchain's helm, kustomize and kubectl run on this repository, and the rendered objects
//! they give, as JSON.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;
use tempfile::TempDir;

/// The toolchain's helm, kustomize and kubectl, helm with a home of its own.
pub struct Tools {
    bin: PathBuf,
    home: TempDir,
}

impl Tools {
    pub fn new() -> Result<Self> {
        Ok(Self {
            bin: ferry_sandbox::toolchain::bin_dir(),
            home: tempfile::Builder::new()
                .prefix("ferry-install-")
                .tempdir()?,
        })
    }

    /// Runs `tool` in the repository root; its stdout, or an error with its stderr.
    pub fn run(&self, tool: &str, args: &[&str]) -> Result<String> {
        let home = self.home.path();
        let out = Command::new(self.bin.join(tool))
            .args(args)
            .current_dir(repo_root())
            .env("HOME", home)
            .env("HELM_CONFIG_HOME", home.join("config"))
            .env("HELM_CACHE_HOME", home.join("cache"))
            .env("HELM_DATA_HOME", home.join("data"))
            .stdin(Stdio::null())
            .output()
            .with_context(|| format!("running {tool} (build it with scripts/toolchain)"))?;
        if !out.status.success() {
            bail!(
                "{tool} {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(String::from_utf8(out.stdout)?)
    }

    /// A file in the tools' scratch directory.
    pub fn write(&self, name: &str, content: &str) -> Result<String> {
        let path = self.home.path().join(name);
        std::fs::write(&path, content)?;
        Ok(path.to_string_lossy().into_owned())
    }

    /// `kustomize build deploy`.
    pub fn kustomize_build(&self) -> Result<String> {
        self.run("kustomize", &["build", "deploy"])
    }

    /// `kustomize build` of an overlay of deploy/ whose kustomization.yaml, besides naming
    /// deploy/ as its resource, holds `settings`.
    pub fn kustomize_overlay(&self, settings: &str) -> Result<String> {
        let overlay = self.home.path().join("overlay");
        copy_dir(&repo_root().join("deploy"), &overlay.join("deploy"))?;
        std::fs::write(
            overlay.join("kustomization.yaml"),
            format!("resources:\n  - deploy\n{settings}"),
        )?;
        self.run("kustomize", &["build", &overlay.to_string_lossy()])
    }

    /// `helm template` of the chart with `values` (YAML).
    pub fn helm_template(&self, release: &str, namespace: &str, values: &str) -> Result<String> {
        let values = self.write("values.yaml", values)?;
        self.run(
            "helm",
            &[
                "template",
                release,
                "charts/ferry",
                "--namespace",
                namespace,
                "--values",
                &values,
            ],
        )
    }
}

pub use ferry_e2e::helm::repo_root;

pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()))?;
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name()))?;
        }
    }
    Ok(())
}

/// The objects of a multi-document YAML stream.
pub fn objects(yaml: &str) -> Result<Vec<Value>> {
    let mut objects = Vec::new();
    for document in serde_yaml::Deserializer::from_str(yaml) {
        let value = Value::deserialize(document)?;
        if !value.is_null() {
            objects.push(value);
        }
    }
    Ok(objects)
}

pub fn kind_and_name(object: &Value) -> (String, String) {
    let text = |pointer| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    };
    (text("/kind").into(), text("/metadata/name").into())
}

pub fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> Result<&'a Value> {
    objects
        .iter()
        .find(|object| kind_and_name(object) == (kind.into(), name.into()))
        .with_context(|| format!("no {kind} {name} among the objects"))
}

/// The value of environment variable `name` of a workload's first container.
pub fn env<'a>(workload: &'a Value, name: &str) -> Option<&'a str> {
    container(workload)["env"]
        .as_array()?
        .iter()
        .find(|var| var["name"] == name)?["value"]
        .as_str()
}

/// The first container of a workload's pod template.
pub fn container(workload: &Value) -> &Value {
    &workload["spec"]["template"]["spec"]["containers"][0]
}

pub fn args(workload: &Value) -> Vec<&str> {
    container(workload)["args"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}
