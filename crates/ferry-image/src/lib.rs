//! Image references and comment-preserving edits of the places images are set, shared by
//! `ferry ci set-image` and the image updater's git write-back.
//!
//! - [`ImageRef`]: `[registry/]path[:tag][@digest]`, by the distribution grammar.
//! - [`kustomization`]: `kustomize edit set image` on a kustomization's `images:`.
//! - [`helm_values`]: set a value at a dotted path of a Helm values file, as `yq -i '.a.b = "v"'`.
//! - [`manifest`]: the image of matching containers in (multi-document) manifests.
//! - [`argocd_source`]: `.argocd-source-<app>.yaml` (`helm.parameters`, `kustomize.images`).
//! - [`bump`]: semver patch/minor/major of a tag, keeping a leading `v`.
//!
//! Every edit takes the file's text and returns [`Edited`]: the new text and each [`Change`].
//! Edits are made on `yaml-edit`'s lossless syntax tree, so comments, key order, quoting and
//! indentation stay and nothing but the target changes; an edit that changes nothing returns
//! the input as it was. [`edit_file`] applies an edit to a file, writing only on a change.

pub mod argocd_source;
pub mod bump;
mod edit;
pub mod helm_values;
pub mod kustomization;
pub mod manifest;
mod reference;
mod yaml;

pub use edit::{Change, EditError, Edited, FileError, edit_file};
pub use reference::{ImageRef, ReferenceError};
