//! `test <image>` (upstream's `argocd-image-updater test`): which tag an image would be updated
//! to with the given settings, and what became of every other tag, without any Application.

use std::fmt::Write as _;
use std::path::PathBuf;

use ferry_image::ImageRef;
use ferry_registry::{CredentialSource, Registries, RegistriesConf, SecretReader};

use crate::config::split_constraint;
use crate::lookup::{candidates, registry_for, split_host};
use crate::strategy::{
    AllowTags, IgnoreTags, Policy, Strategy, parse_platform, runtime_platform, select,
};

/// The settings of a test, as flags give them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct TestArgs {
    /// The image, e.g. `nginx`, `ghcr.io/org/app` (for `digest`, with the tag to track).
    pub image: String,
    /// Only consider tags matching this semantic version constraint.
    #[arg(long)]
    pub semver_constraint: Option<String>,
    /// semver, newest-build, alphabetical or digest (also the old latest, name).
    #[arg(long, default_value = "semver")]
    pub update_strategy: String,
    /// Only consider tags the match function accepts (`regexp:<expression>` or `any`).
    #[arg(long)]
    pub allow_tags: Option<String>,
    /// Ignore tags matching these glob patterns (repeatable).
    #[arg(long)]
    pub ignore_tags: Vec<String>,
    /// Only images for these platforms (os/arch[/variant], repeatable; default: this host's).
    #[arg(long)]
    pub platforms: Vec<String>,
    /// Credentials: pullsecret:<ns>/<name>, secret:<ns>/<name>#<field>, env:<VAR> or ext:<path>
    /// (instead of the registry's).
    #[arg(long)]
    pub credentials: Option<String>,
    /// registries.conf to read registries from.
    #[arg(long)]
    pub registries_conf_path: Option<PathBuf>,
}

impl TestArgs {
    /// Whether the test's credentials come from Kubernetes Secrets (`secret:`, `pullsecret:`):
    /// --credentials, or else a registry of --registries-conf-path.
    pub fn reads_secrets(&self) -> anyhow::Result<bool> {
        let from_secret = |c: &str| c.starts_with("secret:") || c.starts_with("pullsecret:");
        if let Some(credentials) = &self.credentials {
            return Ok(from_secret(credentials));
        }
        let Some(path) = &self.registries_conf_path else {
            return Ok(false);
        };
        let conf = RegistriesConf::load(path)?;
        let mut credentials = conf
            .registries
            .iter()
            .filter_map(|r| r.credentials.as_deref());
        Ok(credentials.any(from_secret))
    }
}

/// Runs the test and returns the report to print; `secrets` reads `pullsecret:` and `secret:`.
pub async fn run(
    args: &TestArgs,
    secrets: Option<std::sync::Arc<dyn SecretReader>>,
) -> anyhow::Result<String> {
    let strategy = Strategy::parse(&args.update_strategy)
        .map_err(|e| anyhow::anyhow!("--update-strategy: {e}"))?;
    let (name, tag) = split_constraint(&args.image);
    let image = ImageRef::parse(name)?;
    let allow_tags = match &args.allow_tags {
        Some(text) => AllowTags::parse(text).map_err(|e| anyhow::anyhow!("--allow-tags: {e}"))?,
        None => AllowTags::Any,
    };
    let ignore_tags = IgnoreTags::parse(args.ignore_tags.iter().map(String::as_str))
        .map_err(|e| anyhow::anyhow!("--ignore-tags: {e}"))?;
    let mut platforms = args
        .platforms
        .iter()
        .map(|p| parse_platform(p).map_err(|e| anyhow::anyhow!("--platforms: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if platforms.is_empty() && strategy.needs_metadata() {
        platforms.push(runtime_platform());
    }
    let constraint = match strategy {
        Strategy::Digest => tag.map(String::from).or(args.semver_constraint.clone()),
        _ => args.semver_constraint.clone(),
    };
    let policy = Policy {
        strategy,
        constraint,
        allow_tags,
        ignore_tags,
        platforms,
    };
    policy.validate().map_err(|e| anyhow::anyhow!("{e}"))?;

    let conf = match &args.registries_conf_path {
        Some(path) => RegistriesConf::load(path)?,
        None => RegistriesConf::parse("registries: []")?,
    };
    let registries = Registries::new(&conf, secrets.clone())?;
    let registry = registry_for(&registries, &image)?;
    let creds = match &args.credentials {
        Some(spec) => {
            let source: CredentialSource = spec.parse()?;
            let host = registry.config().prefix.clone();
            Some(source.fetch(&[host.as_str()], secrets.as_deref()).await?)
        }
        None => None,
    };
    let found = candidates(&registry, &image, &policy, creds.as_ref()).await?;
    let selection = select(&policy, &found)?;

    let mut out = String::new();
    let (_, path) = split_host(&image);
    writeln!(out, "image:       {}", image.name())?;
    writeln!(
        out,
        "registry:    {} (repository {})",
        registry.label(),
        registry.repository(path)
    )?;
    write!(out, "strategy:    {}", policy.strategy)?;
    if let Some(c) = &policy.constraint {
        write!(out, ", constraint {c}")?;
    }
    if policy.strategy.needs_metadata() {
        write!(out, ", platforms {}", policy.platforms.join(","))?;
    }
    writeln!(out)?;
    writeln!(out, "tags:        {} found", found.len())?;
    let width = selection
        .verdicts
        .iter()
        .map(|(t, _)| t.len())
        .max()
        .unwrap_or(0);
    for (tag, verdict) in &selection.verdicts {
        writeln!(out, "  {tag:width$}  {verdict}")?;
    }
    match &selection.chosen {
        Some(chosen) => {
            let value = match (&chosen.digest, policy.strategy) {
                (Some(digest), Strategy::Digest) => format!("{}@{digest}", chosen.name),
                _ => chosen.name.clone(),
            };
            writeln!(out, "latest tag:  {value}")?;
        }
        None => writeln!(
            out,
            "latest tag:  none: no tag passed the filters, the image would not be updated"
        )?,
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(credentials: Option<&str>, conf: Option<&str>) -> (TestArgs, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let registries_conf_path = conf.map(|text| {
            let path = dir.path().join("registries.conf");
            std::fs::write(&path, text).unwrap();
            path
        });
        let args = TestArgs {
            image: "registry.example/app".into(),
            credentials: credentials.map(Into::into),
            registries_conf_path,
            ..TestArgs::default()
        };
        (args, dir)
    }

    #[test]
    fn secrets_are_read_for_the_flag_or_else_the_registries_conf() {
        let conf = "registries:\n- {name: r, api_url: 'https://registry.example', prefix: registry.example, credentials: 'pullsecret:ns/login'}\n";
        let reads = |credentials, conf| {
            let (args, _dir) = args(credentials, conf);
            args.reads_secrets().unwrap()
        };
        assert!(reads(Some("secret:ns/name#creds"), None));
        assert!(reads(None, Some(conf)));
        assert!(
            !reads(Some("env:CREDS"), Some(conf)),
            "the flag replaces the registry's"
        );
        assert!(!reads(None, None));
        assert!(!reads(None, Some("registries: []\n")));
    }
}
