//! The ApplicationSet controller: generators turn an ApplicationSet into parameter sets,
//! templates turn each set into an Application, and the controller creates, updates and
//! deletes the Applications as the ApplicationSet's policy allows.

pub mod controller;
pub mod generate;
pub mod generators;
pub mod params;
pub mod template;
