//! Helpers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_panthera"))
}

pub fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("{name}.yaml"))
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("panthera runs")
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A tool a test needs: from `var`, else `fallback` when it exists. Missing in CI is a failure;
/// elsewhere the test is skipped with a notice.
pub fn tool(var: &str, fallback: &Path) -> Option<PathBuf> {
    let found = std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.exists())
        .or_else(|| fallback.exists().then(|| fallback.to_path_buf()));
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{var} is not set and {} does not exist: run scripts/install-test-deps.sh",
            fallback.display()
        );
        eprintln!("skipping: {var} not set (run scripts/install-test-deps.sh)");
    }
    found
}
