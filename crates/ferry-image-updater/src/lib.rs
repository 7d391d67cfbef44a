//! An image updater compatible with Argo CD Image Updater: finds newer tags of the images an
//! Application runs and writes them back, to the Application (`argocd`) or to its Git repository
//! (`git`).
//!
//! [`strategy`] chooses tags (pure functions); [`config`] reads what to update, from the
//! Application's `argocd-image-updater.argoproj.io/*` annotations or from `ImageUpdater`
//! resources.

pub mod app_spec;
pub mod config;
pub mod lookup;
pub mod metrics;
pub mod plan;
pub mod retry;
pub mod runner;
pub mod select;
pub mod status;
pub mod strategy;
pub mod templates;
pub mod try_image;
pub mod writeback;
