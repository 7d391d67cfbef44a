//! `ferry app logs`: the log of one of the app's pods, read from its destination cluster in core
//! mode, streamed by the server through one.

use std::process::ExitCode;

use anyhow::Context;
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::LogParams;

use super::{Conn, get_app};
use crate::server;
use crate::server::apps::LogRequest;

#[derive(clap::Args, Debug)]
pub struct Args {
    name: String,
    /// The pod.
    #[arg(long)]
    pod: String,
    /// The pod's namespace (default: the app's destination namespace).
    #[arg(long, value_name = "NAMESPACE")]
    pod_namespace: Option<String>,
    /// The container (default: the pod's only one).
    #[arg(long, short = 'c')]
    container: Option<String>,
    /// Only the last N lines.
    #[arg(long, value_name = "N")]
    tail: Option<u64>,
    /// Keep printing new lines.
    #[arg(long, short = 'f')]
    follow: bool,
}

pub async fn run(conn: &Conn, args: Args) -> anyhow::Result<ExitCode> {
    let app = get_app(conn, &args.name).await?;
    let namespace = args
        .pod_namespace
        .clone()
        .unwrap_or_else(|| app.spec.destination.namespace.clone());
    match conn {
        Conn::Server(api) => {
            let request = LogRequest {
                pod: &args.pod,
                namespace: &namespace,
                container: args.container.as_deref(),
                tail_lines: args.tail,
                follow: args.follow,
            };
            server::apps::logs(api, &args.name, &request).await?;
        }
        Conn::Core(core) => {
            let destination = core.destination(&app.spec.destination).await?;
            let pods: Api<Pod> = Api::namespaced(destination.client, &namespace);
            let params = LogParams {
                container: args.container.clone(),
                tail_lines: args.tail.map(|n| n as i64),
                follow: args.follow,
                ..LogParams::default()
            };
            let what = || format!("reading the log of pod {namespace}/{}", args.pod);
            let mut lines = pods
                .log_stream(&args.pod, &params)
                .await
                .with_context(what)?
                .lines();
            while let Some(line) = lines.try_next().await.with_context(what)? {
                println!("{line}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
