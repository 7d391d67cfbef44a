//! One comparison of an Application with its cluster, shared by the controller and the CLI's
//! core mode (Argo CD shares its `StateDiffs` between them the same way): Argo CD's rules on
//! what is compared and how, apart from where the live objects come from.
//!
//! - [`argocd_cm`]: the settings of `argocd-cm` a comparison honours (system-wide
//!   ignoreDifferences, custom health checks, the tracking method);
//! - [`ignore_rules`]: an app's `ignoreDifferences` and the system-wide ones, compiled;
//! - [`check_project`]: an app's sources and destination against its project;
//! - [`desired::prepare`]: rendered objects as a sync applies them (namespaced and marked);
//! - [`compare()`]: desired against live, per resource and for the app, from a [`LiveState`]:
//!   the cluster cache in the controller, objects read through the API in the CLI.

pub mod annotations;
pub mod argocd_cm;
mod compare;
pub mod desired;
mod ignore;
mod live;
mod project;
pub mod resource_compare_options;
pub mod resource_updates;

pub use compare::{
    CompareInput, Comparison, ResourceStates, collect_images, compare, diff_options, health_code,
};
pub use ignore::ignore_rules;
pub use live::{LiveState, Resolver, read_with_managed_fields};
pub use project::{check_app_namespace, check_project};
