//! `ferry app diff`: in core mode the app's sources rendered here and compared with the live
//! objects by the controller's own comparison (ferry-appstate, with argocd-cm's settings);
//! through a server, the predicted and live states the server reports for each managed
//! resource. Printed as unified diffs. Exit 0: no differences, 1: differences, 2: error
//! (argocd's convention). Secret values are masked by ferry-diff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use ferry_appstate::{CompareInput, Comparison, annotations};
use ferry_cache::instance_name;
use ferry_diff::{DiffOptions, DiffResult, SyncStatus, structural_diff};
use ferry_health::AppRef;
use ferry_types::{Application, ResourceKey};

use super::source::{Target, desired_objects, render, with_local_repo};
use super::{Conn, get_app, project_of};
use crate::core::Core;
use crate::output::{Color, colorize_diff};
use crate::server;
use crate::server::client::ApiClient;

pub const EXIT_DIFFERENT: u8 = 1;
pub const EXIT_ERROR: u8 = 2;

#[derive(clap::Args, Debug)]
pub struct Args {
    name: String,
    /// Compare with this revision instead of the target revision (single-source apps).
    #[arg(long)]
    revision: Option<String>,
    /// Render from this local Git repository instead of the app's repository (single-source
    /// apps; committed changes only).
    #[arg(long, value_name = "PATH")]
    local_repo: Option<PathBuf>,
    /// Let the API server predict the applied objects (a server-side apply dry-run); `=false`
    /// compares offline. Default: as the app's compare-options annotation says, else true.
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    server_side_diff: Option<bool>,
    /// Color the diff.
    #[arg(long, value_enum, default_value_t)]
    color: Color,
}

pub async fn run(conn: &Conn, args: Args) -> anyhow::Result<ExitCode> {
    let core = match conn {
        Conn::Core(core) => core,
        Conn::Server(api) => return diff_through_server(api, args).await,
    };
    let mut app = get_app(conn, &args.name).await?;
    if let Some(repo) = &args.local_repo {
        app = with_local_repo(app, repo)?;
    }
    let comparison = compare_in_core_mode(core, &app, &args).await?;
    let mut results = BTreeMap::new();
    for key in comparison.out_of_sync.iter() {
        let text = comparison.diffs.get(key).cloned().unwrap_or_default();
        results.insert(key.clone(), text);
    }
    Ok(print_results(&results, &comparison.errors, args.color))
}

/// Compares the app as the controller compares it (ferry-appstate), with `argocd-cm`'s
/// settings, the app's project, and live objects read through the API.
async fn compare_in_core_mode(
    core: &Core,
    app: &Application,
    args: &Args,
) -> anyhow::Result<Comparison> {
    let name = app.metadata.name.as_deref().unwrap_or_default();
    let target = Target::connect(core, app).await?;
    let argo = core.argo_settings().await?;
    let tracking = argo.tracking.clone().unwrap_or_default();
    let rendered = render(core, app, &target, args.revision.as_deref()).await?;
    let desired = desired_objects(app, rendered, &target, &tracking)?;
    let ignore = ferry_appstate::ignore_rules(app, &argo.ignore_differences)
        .map_err(|err| anyhow::anyhow!("app {name}: {err}"))?;
    let policy = project_of(core, app).await?.policy()?;
    let status = app.status.clone().unwrap_or_default();
    let live = target
        .live_state(&desired, &status.resources, &tracking)
        .await?;
    let app_annotations =
        serde_json::json!({"metadata": {"annotations": &app.metadata.annotations}});
    let server_side = args
        .server_side_diff
        .or(annotations::compare_options(&app_annotations).server_side_diff)
        .unwrap_or(true);
    let app_namespace = app.metadata.namespace.clone().unwrap_or_default();
    Ok(ferry_appstate::compare(CompareInput {
        app: AppRef {
            namespace: &app_namespace,
            name,
        },
        instance: &instance_name(name, None),
        destination: &target.destination,
        desired: &desired,
        live: &live,
        client: &target.client,
        policy: &policy,
        ignore: &ignore,
        compare_options: argo.compare_options,
        health: &argo.health,
        server_side_diff: server_side,
        predictions: None,
        field_manager: ferry_diff::DEFAULT_FIELD_MANAGER,
        keep_states: false,
    })
    .await)
}

/// Diffs the server's view: for each managed resource, what it predicts a sync would leave
/// (or the target state) against the normalized live state.
async fn diff_through_server(api: &ApiClient, args: Args) -> anyhow::Result<ExitCode> {
    if args.revision.is_some() || args.local_repo.is_some() {
        anyhow::bail!("--revision and --local-repo render locally: they need core mode (--core)");
    }
    let options = DiffOptions::default();
    let mut results: BTreeMap<ResourceKey, String> = BTreeMap::new();
    let mut errors = Vec::new();
    for item in server::apps::managed_resources(api, &args.name).await? {
        if item.hook {
            continue;
        }
        let key = ResourceKey::new(&item.group, &item.kind, &item.namespace, &item.name);
        let compared = (|| -> anyhow::Result<Option<DiffResult>> {
            let target = match server::apps::state(&item.predicted_live_state)? {
                Some(predicted) => Some(predicted),
                None => server::apps::state(&item.target_state)?,
            };
            let live = match server::apps::state(&item.normalized_live_state)? {
                Some(normalized) => Some(normalized),
                None => server::apps::state(&item.live_state)?,
            };
            if target.is_none() && live.is_none() {
                return Ok(None);
            }
            Ok(Some(structural_diff(
                target.as_ref(),
                live.as_ref(),
                &options,
            )?))
        })();
        match compared {
            Ok(Some(result)) if result.status != SyncStatus::Synced => {
                results.insert(key, result.text);
            }
            Ok(_) => {}
            Err(err) => errors.push(format!("{key}: {err:#}")),
        }
    }
    Ok(print_results(&results, &errors, args.color))
}

/// Prints the differing resources' diffs and the errors; the exit code says which there were.
fn print_results(
    results: &BTreeMap<ResourceKey, String>,
    errors: &[String],
    color: Color,
) -> ExitCode {
    let color = color.enabled();
    for (key, text) in results {
        println!(
            "\n===== {}/{} {}/{} ======",
            key.group, key.kind, key.namespace, key.name
        );
        if color {
            print!("{}", colorize_diff(text));
        } else {
            print!("{text}");
        }
    }
    if !errors.is_empty() {
        for error in errors {
            eprintln!("error: {error}");
        }
        return ExitCode::from(EXIT_ERROR);
    }
    if results.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(EXIT_DIFFERENT)
    }
}
