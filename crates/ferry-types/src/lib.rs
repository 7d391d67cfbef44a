//! argoproj.io/v1alpha1 resource types (Application, AppProject, ApplicationSet), Argo CD Image
//! Updater's ImageUpdater, and the vocabulary every crate shares: object keys, kinds,
//! apiVersions and Argo CD's resource tracking.

pub mod allowed_namespaces;
pub mod annotations;
pub mod application;
pub mod application_set;
pub mod bookkeeping;
mod crd;
pub mod duration;
mod group_kind;
pub mod image_updater;
mod key;
mod object;
mod patch;
pub mod project;
pub mod resource_overrides;
pub mod secrets;
pub mod source;
pub mod tracking;
pub mod workflow;

pub use application::Application;
pub use application_set::ApplicationSet;
pub use crd::{
    APPLICATION_CRD, APPLICATIONSET_CRD, APPPROJECT_CRD, IMAGEUPDATER_CRD, WORKFLOW_CRDS, crds,
    workflow_crds,
};
pub use group_kind::{GroupKind, GroupKindRef};
pub use image_updater::ImageUpdater;
pub use key::{ResourceKey, group_of, split_api_version};
pub use object::{API_VERSION, GROUP, VERSION};
pub use patch::{merge_patch, merge_patch_from_any};
pub use project::AppProject;
pub use workflow::{
    ClusterWorkflowTemplate, CronWorkflow, Workflow, WorkflowEventBinding, WorkflowTemplate,
};
