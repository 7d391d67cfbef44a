//! `ferry image-updater test <image>`: which tag Argo CD Image Updater's settings would choose
//! for an image, and what became of every other tag (as `argocd-image-updater test`), with
//! ferry-image-updater's own strategies and registry client.

use std::process::ExitCode;
use std::sync::Arc;

use ferry_image_updater::try_image::{self, TestArgs};
use ferry_registry::SecretReader;

use crate::core::{Core, KubeArgs};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    /// Show which tag an image would be updated to, and why.
    Test(TestArgs),
}

pub async fn run(kube: &KubeArgs, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::Test(test) => {
            // Only Secret credential sources need the cluster.
            let secrets = if test.reads_secrets()? {
                let core = Core::connect(kube).await?;
                Some(Arc::new(core.client) as Arc<dyn SecretReader>)
            } else {
                None
            };
            print!("{}", try_image::run(&test, secrets).await?);
            Ok(ExitCode::SUCCESS)
        }
    }
}
