//! Argo Workflows' engine: [`operator`] walks a Workflow's templates into nodes and pods,
//! [`controller`] runs it over the cluster's Workflows; [`pod`] wraps each main container in
//! `ferry-exec`, whose report comes back through the pod's termination message.

pub mod artifact;
pub mod claims;
pub mod condition;
pub mod control;
pub mod controller;
pub mod cron;
pub mod cron_controller;
pub mod duration;
pub mod event;
pub mod expr;
pub mod expr_json;
pub mod expr_tag;
pub mod gc;
pub mod http_condition;
pub mod jq;
pub mod jsonpath;
pub mod lint;
pub mod metrics;
pub mod names;
pub mod operator;
pub mod pod;
pub mod pod_spec_patch;
pub mod retry;
pub mod sequence;
pub mod sprig;
pub mod submit;
pub mod templates;
pub mod validate;
