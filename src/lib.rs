//! Panthera: control plane for application platforms on Kubernetes.
//!
//! The pipeline is `load -> validate -> render -> apply -> status`; this crate holds the pure
//! stages (load, validate, render), the engine that applies them, the CLI and the operator.

pub mod api;
pub mod cli;
pub mod cloud;
pub mod engine;
pub mod errors;
pub mod load;
pub mod operator;
pub mod render;
