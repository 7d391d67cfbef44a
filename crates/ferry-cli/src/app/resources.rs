//! `ferry app resources`: the app's resources as argocd lists them. Core mode lists what the
//! controller recorded in the app's status; a server answers from its resource tree, which also
//! knows the orphaned resources of the destination namespace.

use std::process::ExitCode;

use anyhow::bail;
use serde_json::Value;

use super::{Conn, get_app};
use crate::output::Table;
use crate::server;

#[derive(clap::Args, Debug)]
pub struct Args {
    name: String,
    /// Only the resources in the destination namespace that no app manages (through a server).
    #[arg(long)]
    orphaned: bool,
}

pub async fn run(conn: &Conn, args: Args) -> anyhow::Result<ExitCode> {
    let mut table = Table::new(&["GROUP", "KIND", "NAMESPACE", "NAME", "ORPHANED"]);
    match conn {
        Conn::Core(_) => {
            if args.orphaned {
                bail!("--orphaned needs a server's resource tree (log in with `ferry login`)");
            }
            let app = get_app(conn, &args.name).await?;
            for resource in app.status.map(|s| s.resources).unwrap_or_default() {
                table.row(vec![
                    resource.group,
                    resource.kind,
                    resource.namespace,
                    resource.name,
                    "No".to_string(),
                ]);
            }
        }
        Conn::Server(api) => {
            let tree = server::apps::resource_tree(api, &args.name).await?;
            // Top-level nodes are the app's own resources; the rest (ReplicaSets, Pods, ...)
            // hang below them.
            let (key, orphaned) = if args.orphaned {
                ("orphanedNodes", "Yes")
            } else {
                ("nodes", "No")
            };
            let nodes = tree[key].as_array().cloned().unwrap_or_default();
            for node in nodes.iter().filter(|n| !has_parents(n)) {
                let text = |field: &str| node[field].as_str().unwrap_or_default().to_string();
                table.row(vec![
                    text("group"),
                    text("kind"),
                    text("namespace"),
                    text("name"),
                    orphaned.to_string(),
                ]);
            }
        }
    }
    print!("{}", table.render());
    Ok(ExitCode::SUCCESS)
}

fn has_parents(node: &Value) -> bool {
    node["parentRefs"].as_array().is_some_and(|p| !p.is_empty())
}
