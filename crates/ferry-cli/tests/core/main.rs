//! The core-mode commands (`ferry app|repo|repocreds|cluster|proj`) run as real processes
//! against a real API server. No controller runs here: the tests check what the CLI itself
//! writes and reads, and play the controller's part (status, finalizers) where a story needs it.

mod app;
mod operations;
mod settings;
mod support;
mod verbs;
