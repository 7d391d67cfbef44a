//! `ferry app confirm-deletion`: approves the deletions waiting for a person (`Delete=confirm`),
//! as argocd does: the Application's `argocd.argoproj.io/deletion-approved` annotation is set to
//! the current time, through the Kubernetes API or the API server's update route.

use std::process::ExitCode;

use anyhow::bail;
use ferry_types::Application;
use ferry_types::application::DELETION_APPROVED_ANNOTATION;
use kube::ResourceExt;

use super::{Conn, update_app};
use crate::server;
use crate::server::client::api_error_is;

/// Writes that lost a race with another change are tried again this many times.
const ATTEMPTS: usize = 5;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The app whose pending deletions are approved.
    name: String,
}

pub async fn run(conn: &Conn, args: Args) -> anyhow::Result<ExitCode> {
    let name = &args.name;
    // Second precision, as argocd writes it (RFC 3339).
    let now = jiff::Timestamp::now()
        .round(jiff::Unit::Second)?
        .to_string();
    let approve = |app: &mut Application| {
        app.annotations_mut()
            .insert(DELETION_APPROVED_ANNOTATION.to_string(), now.clone());
    };
    match conn {
        Conn::Core(core) => {
            update_app(core, name, |app| {
                approve(app);
                Ok(())
            })
            .await?;
        }
        Conn::Server(api) => {
            let mut updated = false;
            for _ in 0..ATTEMPTS {
                let mut app = server::apps::get(api, name, None).await?;
                approve(&mut app);
                match server::apps::update(api, &app).await {
                    Ok(()) => {
                        updated = true;
                        break;
                    }
                    Err(err)
                        if api_error_is(&err, |e| e.status == reqwest::StatusCode::CONFLICT) => {}
                    Err(err) => return Err(err),
                }
            }
            if !updated {
                bail!(
                    "app {name} kept changing while being updated ({ATTEMPTS} attempts); try again"
                );
            }
        }
    }
    println!("application '{name}' updated successfully");
    Ok(ExitCode::SUCCESS)
}
