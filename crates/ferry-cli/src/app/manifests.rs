//! `ferry app manifests`: the app's manifests rendered from Git, or its live objects (Secret
//! values masked, managed fields left out).

use std::process::ExitCode;

use anyhow::bail;
use clap::ValueEnum;

use super::get_app;
use super::source::{Target, render};
use crate::core::Core;
use crate::output::yaml_stream;

#[derive(clap::Args, Debug)]
pub struct Args {
    name: String,
    /// Where the manifests come from.
    #[arg(long, value_enum, default_value_t)]
    source: ManifestSource,
    /// Render this revision instead of the target revision (with --source git).
    #[arg(long)]
    revision: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum ManifestSource {
    /// Rendered from the app's sources.
    #[default]
    Git,
    /// The objects in the cluster, as the app's status lists them.
    Live,
}

pub async fn run(core: &Core, args: Args) -> anyhow::Result<ExitCode> {
    let app = get_app(core, &args.name).await?;
    let objects = match args.source {
        ManifestSource::Git => {
            // Rendered against the destination's capabilities, as the controller renders.
            let target = Target::connect(core, &app).await?;
            render(core, &app, &target, args.revision.as_deref()).await?
        }
        ManifestSource::Live => {
            if args.revision.is_some() {
                bail!("--revision applies to --source git only");
            }
            let target = Target::connect(core, &app).await?;
            let mut objects = Vec::new();
            let resources = app.status.map(|s| s.resources).unwrap_or_default();
            for resource in &resources {
                let Some(mut live) = target.live_of_status(resource).await? else {
                    continue;
                };
                if let Some(metadata) = live.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                    metadata.remove("managedFields");
                }
                ferry_diff::mask_secrets(None, Some(&mut live));
                objects.push(live);
            }
            objects
        }
    };
    print!("{}", yaml_stream(&objects)?);
    Ok(ExitCode::SUCCESS)
}
