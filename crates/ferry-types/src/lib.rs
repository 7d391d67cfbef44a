//! argoproj.io/v1alpha1 resource types (Application, AppProject, ApplicationSet) and shared object keys.

pub mod source;
