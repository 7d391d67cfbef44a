//! Test support: a sandbox Kubernetes control plane with a fresh namespace per test (and one with
//! a real node, for stories whose containers must really run), Git servers on loopback (file://,
//! git daemon, smart HTTP, ssh), GnuPG keys to sign commits with,
//! a Helm chart repository, an OCI registry for Helm charts and test images (with a token
//! service for Bearer auth), the `ferry-server` process, Dex as the OpenID provider of SSO
//! tests, Gitea as the SCM provider of the ApplicationSet generators' tests, Argo CD's source
//! tree (for its test data), the `ferry` CLI run in a home of its own, and the kubelet's end of
//! pods on kwok's nodes.

pub mod argocd_source;
pub mod chart_repo;
pub mod cli;
mod daemon;
pub mod dex;
pub mod git;
pub mod gitea;
pub mod github_app;
pub mod gpg;
mod helm;
mod http;
pub mod http_proxy;
pub mod kube;
pub mod kwok;
pub mod minio;
pub mod process;
pub mod proxy;
pub mod real_node;
pub mod registry;
mod registry_token;
pub mod server;

pub use http::{Issued, TestCa};
