//! The CLI through a real `ferry-server` process on the sandbox: `ferry login`, the config file,
//! `ferry account`, `ferry logout`, and the resource verbs with the server's RBAC. Build the
//! server first: `cargo build -p ferry-server --bin ferry-server`.

mod accounts;
mod apps;
mod settings;
mod support;
