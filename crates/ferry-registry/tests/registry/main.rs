//! ferry-registry against real registries (the CNCF distribution registry of ferry-testkit,
//! with its token service) and, for Secrets, the sandbox's API server.

mod client;
mod common;
mod credentials;
mod sandbox;
