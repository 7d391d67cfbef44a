//! `ferry app manifests`: the app's manifests rendered from Git, or its live objects (Secret
//! values masked, managed fields left out); rendered here and read from the cluster in core
//! mode, by the server through one.

use std::process::ExitCode;

use anyhow::bail;
use clap::ValueEnum;

use serde_json::Value;

use super::source::{Target, render};
use super::{Conn, get_app};
use crate::output::yaml_stream;
use crate::server;

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

pub async fn run(conn: &Conn, args: Args) -> anyhow::Result<ExitCode> {
    if args.source == ManifestSource::Live && args.revision.is_some() {
        bail!("--revision applies to --source git only");
    }
    let mut objects = match conn {
        Conn::Core(core) => {
            let app = get_app(conn, &args.name).await?;
            let target = Target::connect(core, &app).await?;
            match args.source {
                // Rendered against the destination's capabilities, as the controller renders.
                ManifestSource::Git => {
                    render(core, &app, &target, args.revision.as_deref()).await?
                }
                ManifestSource::Live => {
                    let mut objects = Vec::new();
                    let resources = app.status.map(|s| s.resources).unwrap_or_default();
                    for resource in &resources {
                        objects.extend(target.live_of_status(resource).await?);
                    }
                    objects
                }
            }
        }
        Conn::Server(api) => match args.source {
            ManifestSource::Git => {
                server::apps::manifests(api, &args.name, args.revision.as_deref()).await?
            }
            ManifestSource::Live => {
                let mut objects = Vec::new();
                for item in server::apps::managed_resources(api, &args.name).await? {
                    objects.extend(server::apps::state(&item.live_state)?);
                }
                objects
            }
        },
    };
    if args.source == ManifestSource::Live {
        objects.iter_mut().for_each(clean_live);
    }
    print!("{}", yaml_stream(&objects)?);
    Ok(ExitCode::SUCCESS)
}

/// A live object as shown: no managed fields, Secret values masked.
fn clean_live(live: &mut Value) {
    if let Some(metadata) = live.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        metadata.remove("managedFields");
    }
    ferry_diff::mask_secrets(None, Some(live));
}
