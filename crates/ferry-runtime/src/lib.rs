//! What ferry's processes do at their edges, apart from ferry-types' pure types: install the
//! CRDs, list and write Argo CD's repository and cluster Secrets, find the cluster (kubeconfig),
//! discover its APIs, log, serve its metrics, and stop on a signal.

mod crd;
pub mod metrics;
mod process;
mod project;
pub mod secret_store;
mod update;

pub use crd::{CrdError, install_crds, install_workflow_crds};
pub use process::{ConfigError, discover, init_logging, kube_config, shutdown_signal};
pub use project::ensure_default_project;
pub use update::{UpdateError, update};
