//! No library: this crate only holds `tests/`, which start the workspace's service binaries
//! (built by `cargo build` from the test, see `tests/authz.rs`) the way the rendered Deployments
//! start them.
