//! Panthera: control plane for application platforms on Kubernetes.
//!
//! The pipeline is `load -> validate -> render -> apply -> status`; this crate holds the pure
//! stages (load, validate, render) and the CLI that drives them.

pub mod api;
pub mod cli;
pub mod cloud;
pub mod engine;
pub mod load;
pub mod render;
