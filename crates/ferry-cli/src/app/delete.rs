//! `ferry app delete`: as Argo CD's API server deletes, the cascade is decided by finalizers set
//! (or removed) right before the delete; the controller then deletes the resources and removes
//! the finalizer. Through a server, its delete endpoint does that.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{ArgAction, ValueEnum};
use ferry_types::Application;
use ferry_types::application::finalizer;
use kube::api::DeleteParams;

use super::operation::{Watched, watch_app};
use super::{Conn, update_app};
use crate::output::confirm;
use crate::server;

/// The finalizers that make the controller delete an app's resources.
const RESOURCE_FINALIZERS: [&str; 3] = [
    finalizer::RESOURCES,
    finalizer::RESOURCES_FOREGROUND,
    finalizer::RESOURCES_BACKGROUND,
];

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The apps to delete.
    #[arg(required = true)]
    names: Vec<String>,
    /// Delete the app's resources too (`--cascade=false` leaves them in the cluster).
    #[arg(long, action = ArgAction::Set, num_args = 0..=1, require_equals = true,
          default_value_t = true, default_missing_value = "true")]
    cascade: bool,
    /// How the resources are deleted with --cascade.
    #[arg(long, value_enum, default_value_t)]
    propagation_policy: Propagation,
    /// Do not ask for confirmation.
    #[arg(long, short = 'y')]
    yes: bool,
    /// Wait until the apps are gone.
    #[arg(long)]
    wait: bool,
    /// With --wait: give up after this many seconds (0: no limit).
    #[arg(long, default_value_t = 0, value_name = "SECONDS")]
    timeout: u64,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
enum Propagation {
    #[default]
    Foreground,
    Background,
}

pub async fn run(conn: &Conn, args: Args) -> anyhow::Result<ExitCode> {
    if args.propagation_policy == Propagation::Background && !args.cascade {
        bail!("--propagation-policy applies to cascading deletes only (not with --cascade=false)");
    }
    let wanted = match args.propagation_policy {
        Propagation::Foreground => finalizer::RESOURCES,
        Propagation::Background => finalizer::RESOURCES_BACKGROUND,
    };
    for name in &args.names {
        let question = if args.cascade {
            format!("Delete app {name} and all its resources?")
        } else {
            format!("Delete app {name}, leaving its resources in the cluster?")
        };
        if !args.yes && !confirm(&question)? {
            println!("app {name} not deleted");
            continue;
        }
        match conn {
            Conn::Core(core) => {
                let cascade = args.cascade;
                update_app(core, name, |app| {
                    set_cascade(app, cascade.then_some(wanted));
                    Ok(())
                })
                .await?;
                let (apps, plain) = core.app_api(name).await?;
                apps.delete(plain, &DeleteParams::default())
                    .await
                    .with_context(|| format!("deleting app {name}"))?;
            }
            Conn::Server(api) => {
                let policy = args
                    .propagation_policy
                    .to_possible_value()
                    .expect("no skipped values");
                server::apps::delete(api, name, args.cascade, policy.get_name()).await?;
            }
        }
        println!("application '{name}' deleted");
        if args.wait {
            wait_until_gone(conn, name, args.timeout).await?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Leaves exactly the resources finalizer `wanted` (none for a non-cascading delete), keeping
/// every other finalizer.
fn set_cascade(app: &mut Application, wanted: Option<&str>) {
    let finalizers = app.metadata.finalizers.get_or_insert_default();
    finalizers.retain(|f| !RESOURCE_FINALIZERS.contains(&f.as_str()));
    if let Some(wanted) = wanted {
        finalizers.push(wanted.to_string());
    }
    if finalizers.is_empty() {
        app.metadata.finalizers = None;
    }
}

async fn wait_until_gone(conn: &Conn, name: &str, timeout: u64) -> anyhow::Result<()> {
    let limit = (timeout > 0).then(|| Duration::from_secs(timeout));
    let gone = |app: Option<&Application>| Ok(app.is_none().then_some(()));
    let watched = match conn {
        // It existed a moment ago: a 403 now means it is gone.
        Conn::Server(api) => server::apps::watch(api, name, limit, true, gone).await?,
        Conn::Core(_) => watch_app(conn, name, limit, gone).await?,
    };
    match watched {
        Watched::Done(()) => Ok(()),
        Watched::TimedOut(_) => bail!(
            "app {name} still exists after {timeout}s (its finalizers wait for the controller)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finalizers(initial: &[&str], wanted: Option<&str>) -> Option<Vec<String>> {
        let mut app = Application::default();
        app.metadata.finalizers = Some(initial.iter().map(|f| f.to_string()).collect());
        set_cascade(&mut app, wanted);
        app.metadata.finalizers
    }

    #[test]
    fn cascade_is_decided_by_exactly_one_resources_finalizer() {
        assert_eq!(
            finalizers(&["other"], Some(finalizer::RESOURCES)),
            Some(vec!["other".into(), finalizer::RESOURCES.into()])
        );
        assert_eq!(
            finalizers(
                &[finalizer::RESOURCES],
                Some(finalizer::RESOURCES_BACKGROUND)
            ),
            Some(vec![finalizer::RESOURCES_BACKGROUND.into()])
        );
        assert_eq!(
            finalizers(&[finalizer::RESOURCES_FOREGROUND, "other"], None),
            Some(vec!["other".into()])
        );
        assert_eq!(finalizers(&[finalizer::RESOURCES], None), None);
    }
}
