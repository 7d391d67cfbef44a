//! What one Application's images should become: for each configured image, the image it runs
//! now (from `status.summary.images`), the registry's tags, the strategy's choice, and whether
//! that differs. Nothing is written here.

use ferry_image::ImageRef;
use std::sync::Arc;

use ferry_registry::{Registries, Registry, SecretReader};
use ferry_types::Application;

use crate::config::{AppConfig, ManagedImage};
use crate::lookup::{LookupError, candidates, image_credentials, registry_for};
use crate::strategy::{Current, Strategy, needs_update, select};

/// A new tag for one image.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub alias: String,
    /// The image's name as configured (no tag).
    pub image: String,
    /// What runs now (`tag`, `tag@digest`), if the image runs.
    pub old: Option<String>,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Change {
    /// The new tag as written (`tag`, `tag@digest`).
    pub fn new_tag(&self) -> String {
        crate::app_spec::tag_with_digest(self.tag.as_deref(), self.digest.as_deref())
    }
}

/// What became of one image.
#[derive(Debug)]
pub enum Outcome {
    /// The app does not run it and `force-update` is off.
    NotLive,
    /// No tag passed the filters and the strategy: the image stays as it is.
    NoMatch,
    UpToDate {
        tag: String,
    },
    Update(Change),
    Failed(LookupError),
}

/// One image's outcome.
pub struct ImagePlan {
    pub alias: String,
    pub image: String,
    /// The registry asked, when one was found.
    pub registry: Option<Arc<Registry>>,
    pub outcome: Outcome,
}

/// The live image of `app` that is `image`, as `Current`.
fn current(app: &Application, image: &ImageRef) -> Option<Current> {
    let summary = &app.status.as_ref()?.summary;
    summary
        .images
        .iter()
        .filter_map(|live| ImageRef::parse(live).ok())
        .find(|live| live.same_image(image))
        .map(|live| Current {
            tag: live.tag().map(Into::into),
            digest: live.digest().map(Into::into),
        })
}

fn describe(current: &Current) -> Option<String> {
    match (&current.tag, &current.digest) {
        (None, None) => None,
        (tag, digest) => Some(crate::app_spec::tag_with_digest(
            tag.as_deref(),
            digest.as_deref(),
        )),
    }
}

/// Decides each image of `config` for `app`.
pub async fn plan(
    app: &Application,
    config: &AppConfig,
    registries: &Registries,
    secrets: Option<&dyn SecretReader>,
) -> Vec<ImagePlan> {
    let namespace = app.metadata.namespace.as_deref().unwrap_or_default();
    let mut plans = Vec::with_capacity(config.images.len());
    for image in &config.images {
        let mut registry = None;
        let outcome = match current(app, &image.image) {
            None if !image.force_update => Outcome::NotLive,
            running => match registry_for(registries, &image.image) {
                Err(err) => Outcome::Failed(err),
                Ok(found) => {
                    registry = Some(found.clone());
                    let running = running.unwrap_or_default();
                    decide(image, &running, &found, namespace, secrets)
                        .await
                        .unwrap_or_else(Outcome::Failed)
                }
            },
        };
        plans.push(ImagePlan {
            alias: image.alias.clone(),
            image: image.image.name().to_string(),
            registry,
            outcome,
        });
    }
    plans
}

async fn decide(
    image: &ManagedImage,
    running: &Current,
    registry: &Registry,
    namespace: &str,
    secrets: Option<&dyn SecretReader>,
) -> Result<Outcome, LookupError> {
    let creds =
        image_credentials(registry, image.pull_secret.as_deref(), namespace, secrets).await?;
    let found = candidates(registry, &image.image, &image.policy, creds.as_ref()).await?;
    let selection = select(&image.policy, &found).map_err(|err| {
        // Checked when the configuration was read; kept for a policy built elsewhere.
        LookupError::Policy(err.to_string())
    })?;
    let Some(chosen) = selection.chosen else {
        return Ok(Outcome::NoMatch);
    };
    if !needs_update(image.policy.strategy, running, &chosen) {
        return Ok(Outcome::UpToDate {
            tag: describe(running).unwrap_or_default(),
        });
    }
    let digest_strategy = image.policy.strategy == Strategy::Digest;
    Ok(Outcome::Update(Change {
        alias: image.alias.clone(),
        image: image.image.name().to_string(),
        old: describe(running),
        tag: Some(chosen.name.clone()),
        digest: chosen.digest.filter(|_| digest_strategy),
    }))
}
