//! Test support: a sandbox Kubernetes control plane with a fresh namespace per test, and Git
//! servers on loopback (file://, git daemon, smart HTTP, ssh).

pub mod git;
pub mod kube;
pub mod process;
