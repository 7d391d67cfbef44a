//! Repo service: turns a source (repo, revision, path, options) into Kubernetes objects.
//!
//! This is Argo CD's repo-server job. A [`Renderer`] resolves each Application source to a
//! commit with `ferry-git`, checks it out and renders it the way the user's own tools would:
//!
//! - **Directory**: YAML/JSON files (multi-document, `List`s flattened), `recurse`,
//!   `include`/`exclude` globs, and `*.jsonnet` evaluated with jrsonnet in a worker process
//!   (see [`JsonnetWorker`]);
//! - **Kustomize**: Application options applied with `kustomize edit` in a private copy, then
//!   `kustomize build`;
//! - **Helm**: `helm template` on a chart from Git (dependencies built when missing) or pulled
//!   from a Helm repository / OCI registry, with value files possibly from another source
//!   (`$ref/path`);
//! - **Plugins**: `ConfigManagementPlugin`-style commands.
//!
//! Nothing a render reads may leave the repository checkout, tools run with a scrubbed
//! environment, a timeout, an output limit and a memory limit, the sizes of checkouts, manifest
//! files and rendered manifests are bounded (see [`RenderConfig`]), and results are cached by
//! commit and options.

mod app;
mod archive;
mod cache;
mod chart;
mod confine;
mod credential;
mod directory;
mod env;
mod error;
mod helm;
mod jsonnet;
mod kustomize;
mod limits;
mod manifest;
mod oci_source;
mod overrides;
mod plugin;
mod renderer;
mod tool;
mod workspace;

pub use app::AppContext;
pub use cache::CacheStats;
pub use credential::{repo_credential, with_repo_secret};
pub use directory::parse_manifest_file;
pub use error::{ErrorKind, RenderError};
pub use jsonnet::{
    JSONNET_WORKER_ARG, JsonnetWorker, jsonnet_worker_answer, jsonnet_worker_main,
    run_jsonnet_worker_if_asked,
};
pub use kustomize::{KUSTOMIZATION_NAMES, KustomizeOptions, KustomizeVersion};
pub use limits::{
    DEFAULT_MAX_MANIFEST_FILE_SIZE, DEFAULT_MAX_MANIFEST_SIZE, DEFAULT_MAX_REPO_SIZE,
    DEFAULT_MAX_TOOL_MEMORY, DEFAULT_MAX_TOOL_OUTPUT, format_size, parse_size,
};
pub use oci_source::oci_tags;
pub use plugin::{
    ParameterAnnouncement, PluginCommand, PluginConfig, PluginDiscover, PluginFind, PluginMetadata,
    PluginParameters, PluginSpec,
};
pub use renderer::{
    PluginDetails, RefSource, RenderConfig, RenderStats, Rendered, Renderer, SourceDetails,
    SourceRevision,
};
