//! argoproj.io/v1alpha1 resource types (Application, AppProject, ApplicationSet) and shared object keys.

mod key;
pub mod source;

pub use key::{ResourceKey, group_of};
