//! Golden files of what each example renders (tests/snapshots). Review a change with
//! `INSTA_UPDATE=always cargo test --test golden` and `git diff tests/snapshots`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use panthera::render::{Redacted, Renderer};

fn rendered(name: &str) -> String {
    let path = format!("{}/examples/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let platform = panthera::load::load_file(std::path::Path::new(&path)).unwrap();
    let plan = Renderer::embedded()
        .unwrap()
        .render(&platform, &Redacted)
        .unwrap();
    plan.objects()
        .map(|o| {
            format!(
                "# {}\n{}",
                o.template,
                serde_yaml::to_string(&o.value).unwrap()
            )
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

#[test]
fn minimal() {
    insta::assert_snapshot!("minimal", rendered("minimal"));
}

#[test]
fn shop() {
    insta::assert_snapshot!("shop", rendered("shop"));
}

#[test]
fn aws() {
    insta::assert_snapshot!("aws", rendered("aws"));
}
