//! `ferry app diff`: in core mode the app's sources rendered here and compared with the live
//! objects the way the controller compares them; through a server, the predicted and live states
//! the server reports for each managed resource. Printed as unified diffs. Exit 0: no
//! differences, 1: differences, 2: error (argocd's convention). Secret values are masked by
//! ferry-diff.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use ferry_diff::{
    DiffOptions, DiffResult, IgnoreRules, ResourceIgnoreDifferences, SyncStatus, server_side_diff,
    structural_diff,
};
use ferry_types::{Application, ResourceKey};
use serde_json::Value;

use super::source::{Target, desired_objects, render, with_local_repo};
use super::{Conn, get_app};
use crate::output::{Color, colorize_diff};
use crate::server;
use crate::server::client::ApiClient;

/// Per-app and per-resource comparison options (Argo CD's annotation).
const COMPARE_OPTIONS_ANNOTATION: &str = "argocd.argoproj.io/compare-options";

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
    let target = Target::connect(core, &app).await?;
    let tracking = core.tracking_method().await?;
    let rendered = render(core, &app, &target, args.revision.as_deref()).await?;
    let desired = desired_objects(&app, rendered, &target, &tracking)?;
    let options = diff_options(&app)?;
    let app_value = serde_json::to_value(&app)?;
    let server_side = args
        .server_side_diff
        .or_else(|| server_side_option(&app_value))
        .unwrap_or(true);

    let mut results: BTreeMap<ResourceKey, DiffResult> = BTreeMap::new();
    let mut errors = Vec::new();
    for obj in &desired {
        // Objects without a name (generateName) have nothing live to compare with yet.
        let Some(key) = ResourceKey::of(obj) else {
            continue;
        };
        if results.contains_key(&key) {
            errors.push(format!("{key} appears more than once in the manifests"));
            continue;
        }
        // As the controller does, a resource can opt out of the server-side diff.
        let server_side = server_side && server_side_option(obj) != Some(false);
        match compare(&target, obj, server_side, &options).await {
            Ok(result) => {
                results.insert(key, result);
            }
            Err(err) => errors.push(format!("{key}: {err:#}")),
        }
    }
    // Resources the controller found tracked to the app but no longer desired: to be pruned.
    let status = app.status.clone().unwrap_or_default();
    for resource in status.resources.iter().filter(|r| r.requires_pruning) {
        let key = resource.key();
        if results.contains_key(&key) {
            continue;
        }
        let extra = match target.live_of_status(resource).await {
            Ok(Some(live)) => structural_diff(None, Some(&live), &options).map_err(Into::into),
            Ok(None) => continue,
            Err(err) => Err(err),
        };
        match extra {
            Ok(result) => {
                results.insert(key, result);
            }
            Err(err) => errors.push(format!("{key}: {err:#}")),
        }
    }

    Ok(print_results(&results, &errors, args.color))
}

/// Diffs the server's view: for each managed resource, what it predicts a sync would leave
/// (or the target state) against the normalized live state.
async fn diff_through_server(api: &ApiClient, args: Args) -> anyhow::Result<ExitCode> {
    if args.revision.is_some() || args.local_repo.is_some() {
        anyhow::bail!("--revision and --local-repo render locally: they need core mode (--core)");
    }
    let options = DiffOptions::default();
    let mut results = BTreeMap::new();
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
            Ok(Some(result)) => {
                results.insert(key, result);
            }
            Ok(None) => {}
            Err(err) => errors.push(format!("{key}: {err:#}")),
        }
    }
    Ok(print_results(&results, &errors, args.color))
}

/// Prints the differing resources' diffs and the errors; the exit code says which there were.
fn print_results(
    results: &BTreeMap<ResourceKey, DiffResult>,
    errors: &[String],
    color: Color,
) -> ExitCode {
    let color = color.enabled();
    let mut different = false;
    for (key, result) in results {
        if result.status == SyncStatus::Synced {
            continue;
        }
        different = true;
        println!(
            "\n===== {}/{} {}/{} ======",
            key.group, key.kind, key.namespace, key.name
        );
        if color {
            print!("{}", colorize_diff(&result.text));
        } else {
            print!("{}", result.text);
        }
    }
    if !errors.is_empty() {
        for error in errors {
            eprintln!("error: {error}");
        }
        return ExitCode::from(EXIT_ERROR);
    }
    if different {
        ExitCode::from(EXIT_DIFFERENT)
    } else {
        ExitCode::SUCCESS
    }
}

/// Compares one desired object with its live counterpart.
async fn compare(
    target: &Target,
    desired: &Value,
    server_side: bool,
    options: &DiffOptions,
) -> anyhow::Result<DiffResult> {
    let Some((resource, scope)) = target.resolve(desired) else {
        // The cluster does not serve the kind yet, so the object cannot exist.
        return Ok(structural_diff(Some(desired), None, options)?);
    };
    let live = target.live_of(&resource, &scope, desired).await?;
    Ok(if server_side {
        server_side_diff(
            &target.client,
            &target.discovery,
            Some(desired),
            live.as_ref(),
            options,
            None,
        )
        .await?
    } else {
        structural_diff(Some(desired), live.as_ref(), options)?
    })
}

/// `ServerSideDiff=true|false` in an object's `argocd.argoproj.io/compare-options`.
fn server_side_option(obj: &Value) -> Option<bool> {
    let options = obj
        .pointer("/metadata/annotations")?
        .get(COMPARE_OPTIONS_ANNOTATION)?
        .as_str()?;
    options
        .split(',')
        .find_map(|option| match option.trim().split_once('=')? {
            ("ServerSideDiff", "true") => Some(true),
            ("ServerSideDiff", "false") => Some(false),
            _ => None,
        })
}

/// The app's `ignoreDifferences` as ferry-diff rules.
fn diff_options(app: &Application) -> anyhow::Result<DiffOptions> {
    let rules: Vec<ResourceIgnoreDifferences> = app
        .spec
        .ignore_differences
        .iter()
        .map(|rule| ResourceIgnoreDifferences {
            group: rule.group.clone(),
            kind: rule.kind.clone(),
            name: rule.name.clone(),
            namespace: rule.namespace.clone(),
            json_pointers: rule.json_pointers.clone(),
            jq_path_expressions: rule.jq_path_expressions.clone(),
            managed_fields_managers: rule.managed_fields_managers.clone(),
        })
        .collect();
    let name = app.metadata.name.as_deref().unwrap_or_default();
    Ok(DiffOptions {
        ignore_differences: IgnoreRules::new(&rules)
            .with_context(|| format!("app {name}: spec.ignoreDifferences"))?,
        ..DiffOptions::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compare_options_can_turn_the_server_side_diff_off() {
        let with = |options: &str| {
            server_side_option(
                &json!({"metadata": {"annotations": {COMPARE_OPTIONS_ANNOTATION: options}}}),
            )
        };
        assert_eq!(with("IgnoreExtraneous, ServerSideDiff=false"), Some(false));
        assert_eq!(with("ServerSideDiff=true"), Some(true));
        assert_eq!(with("IgnoreExtraneous"), None);
        assert_eq!(server_side_option(&json!({"metadata": {}})), None);
    }
}
