//! `ferry health`: assess the health of one Kubernetes object, with the built-in checks, an
//! argocd-cm's custom scripts, or a given Lua script.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::ValueEnum;
use ferry_health::{HealthChecks, HealthCode, HealthStatus, assess};
use ferry_types::GroupKindRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The object to assess, as the API server returns it (YAML or JSON; `-` reads stdin).
    #[arg(long)]
    object: PathBuf,
    /// A Lua health script (Argo CD's contract: `obj` in, `{status=..., message=...}` out) to use
    /// for the object's kind instead of the built-in check.
    #[arg(long)]
    script: Option<PathBuf>,
    /// An argocd-cm ConfigMap (YAML or JSON) whose `resource.customizations` health scripts apply.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Output::Plain)]
    output: Output,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Output {
    /// The status on one line, then the message (if any).
    Plain,
    /// `{"status": ..., "message": ...}`, or `null` for kinds without a health.
    Json,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let object = read_object(&args.object)?;
    let Some(gk) = GroupKindRef::of(&object) else {
        bail!(
            "{}: the object has no apiVersion and kind",
            args.object.display()
        );
    };
    let mut checks = match &args.config {
        Some(path) => config_checks(path)?,
        None => HealthChecks::new(),
    };
    if let Some(path) = &args.script {
        let script = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read health script {}", path.display()))?;
        checks = checks
            .with_lua(&gk.to_string(), script)
            .with_context(|| format!("health script {}", path.display()))?;
    }
    let health = assess(&object, &checks);
    print!("{}", render(health.as_ref(), args.output)?);
    if health.is_none() && matches!(args.output, Output::Plain) {
        eprintln!("{gk} has no health check: Argo CD reports no health for it");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Serialize)]
struct JsonHealth<'a> {
    status: HealthCode,
    message: &'a str,
}

fn render(health: Option<&HealthStatus>, output: Output) -> anyhow::Result<String> {
    Ok(match (output, health) {
        (Output::Plain, None) => String::new(),
        (Output::Plain, Some(health)) if health.message.is_empty() => {
            format!("{}\n", health.status)
        }
        (Output::Plain, Some(health)) => format!("{}\n{}\n", health.status, health.message),
        (Output::Json, None) => "null\n".to_owned(),
        // Unlike the library's serialization, the message is always there, even when empty.
        (Output::Json, Some(health)) => format!(
            "{}\n",
            serde_json::to_string(&JsonHealth {
                status: health.status,
                message: &health.message,
            })?
        ),
    })
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        return std::io::read_to_string(std::io::stdin())
            .context("cannot read the object from stdin");
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

/// Exactly one object: a stream of several documents is refused rather than half-assessed.
pub(crate) fn read_object(path: &Path) -> anyhow::Result<Value> {
    let text = read_text(path)?;
    let mut documents = Vec::new();
    for document in serde_yaml::Deserializer::from_str(&text) {
        let value = Value::deserialize(document)
            .with_context(|| format!("{} is not valid YAML or JSON", path.display()))?;
        if !value.is_null() {
            documents.push(value);
        }
    }
    match <[Value; 1]>::try_from(documents) {
        Ok([object]) if object.is_object() => Ok(object),
        Ok(_) => bail!("{}: expected a Kubernetes object (a map)", path.display()),
        Err(documents) => bail!(
            "{}: expected exactly one object, found {}",
            path.display(),
            documents.len()
        ),
    }
}

fn config_checks(path: &Path) -> anyhow::Result<HealthChecks> {
    let config = read_object(path)?;
    let Some(data) = config.get("data").and_then(Value::as_object) else {
        bail!("{}: expected a ConfigMap with a data map", path.display());
    };
    let mut entries = Vec::new();
    for (key, value) in data {
        let Some(value) = value.as_str() else {
            bail!("{}: data key {key:?} is not a string", path.display());
        };
        entries.push((key.as_str(), value));
    }
    HealthChecks::from_argocd_cm(entries).with_context(|| path.display().to_string())
}
