//! Argo CD's gRPC API on ferry-server's port, from Argo CD's own `.proto` files (staged under
//! `proto/` by `scripts/argocd-protos`, compiled into a descriptor set at build time).
//!
//! ferry-server's REST routes are the one implementation: [`Gateway`] answers a gRPC (or
//! grpc-web) call by doing what Argo CD's grpc-gateway does the other way round. It reads the
//! method's `google.api.http` binding from the protos, turns the request message into that REST
//! request (path, query, JSON body), sends it through the REST router in process — with the
//! caller's token, so the same authentication, RBAC and audit events apply — and turns the JSON
//! answer, or its error, into the response message or the gRPC status. So every method that has a
//! REST route in ferry works over gRPC, and the others answer `Unimplemented` by name. A server
//! stream is read from the route's Server-Sent Events; a client stream (`GetManifestsWithFiles`)
//! is passed on as its messages' JSON, one per line, in the route's request body.
//!
//! - [`json`]: Kubernetes' and Argo CD's JSON shapes ↔ the protos' JSON mapping (times,
//!   raw extensions, int-or-strings, quantities);
//! - [`binding`]: a method's REST binding, and the REST request for a request message;
//! - [`reply`]: answers encoded, each Kubernetes object in them once per resourceVersion;
//! - [`codec`]: tonic's codecs over [`prost_reflect::DynamicMessage`]s and encoded answers.

pub mod binding;
pub mod codec;
mod gateway;
pub mod json;
pub mod reply;

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, MethodDescriptor};

pub use gateway::{Gateway, Unrouted, beside, is_grpc};

static DESCRIPTORS: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(include_bytes!(concat!(env!("OUT_DIR"), "/argocd.bin")).as_slice())
        .expect("the descriptor set compiled by build.rs decodes")
});

/// Argo CD's services, messages and the Kubernetes types they use.
pub fn descriptors() -> &'static DescriptorPool {
    &DESCRIPTORS
}

/// The method a gRPC path (`/application.ApplicationService/List`) calls, if Argo CD has it.
pub fn method(path: &str) -> Option<MethodDescriptor> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    descriptors()
        .get_service_by_name(service)?
        .methods()
        .find(|candidate| candidate.name() == method)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argo_cds_services_are_known_by_their_grpc_paths() {
        for path in [
            "/version.VersionService/Version",
            "/cluster.SettingsService/Get",
            "/session.SessionService/Create",
            "/account.AccountService/CanI",
            "/application.ApplicationService/Watch",
            "/project.ProjectService/List",
            "/repository.RepositoryService/ListRepositories",
            "/repocreds.RepoCredsService/ListRepositoryCredentials",
            "/cluster.ClusterService/List",
        ] {
            assert!(method(path).is_some(), "{path}");
        }
        for path in [
            "/application.ApplicationService/Nope",
            "/nope.Service/List",
            "x",
            "/a",
        ] {
            assert!(method(path).is_none(), "{path}");
        }
    }
}
