//! Rendered manifests against the official Kubernetes schemas, strictly (unknown fields fail),
//! with PyPI's kubernetes-validate.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use std::path::Path;
use std::process::Command;

use common::{example, run, stderr, tool};

#[test]
fn rendered_examples_the_crd_and_the_operator_install_pass_strict_kubernetes_validation() {
    let home = std::env::var("HOME").unwrap_or_default();
    let fallback = Path::new(&home).join(".cache/panthera/venv/bin/kubernetes-validate");
    let Some(validator) = tool("PANTHERA_KUBERNETES_VALIDATE", &fallback) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in ["minimal", "shop", "aws"] {
        let o = run(&["render", "-f", example(name).to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        if name == "shop" {
            // The bucket in the cluster: its server and its setup Job are checked too.
            let text = String::from_utf8_lossy(&o.stdout);
            assert!(text.contains("name: shop-objects") && text.contains("kind: Job"));
        }
        let path = dir.path().join(format!("{name}.yaml"));
        std::fs::write(&path, &o.stdout).unwrap();
        files.push(path);
    }
    // The shop with a search engine, which no example has yet (its image is not on the test
    // node): the catalog searching through it.
    let mut shop: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(example("shop")).unwrap()).unwrap();
    shop["spec"]["search"] = serde_yaml::from_str("{storage: 5Gi}").unwrap();
    for service in shop["spec"]["services"].as_sequence_mut().unwrap() {
        if service["name"] == "catalog" {
            service["search"] = true.into();
        }
    }
    let searching = dir.path().join("shop-with-search.yaml");
    std::fs::write(&searching, serde_yaml::to_string(&shop).unwrap()).unwrap();
    let o = run(&["render", "-f", searching.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("name: shop-search"));
    let path = dir.path().join("shop-with-search.rendered.yaml");
    std::fs::write(&path, &o.stdout).unwrap();
    files.push(path);
    files.push(Path::new(env!("CARGO_MANIFEST_DIR")).join("crds/pantheraplatform.yaml"));
    let o = run(&["install", "--print"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let install = dir.path().join("install.yaml");
    std::fs::write(&install, &o.stdout).unwrap();
    files.push(install);
    let o = Command::new(&validator)
        .args(["--strict", "--quiet", "--kubernetes-version", "1.33.0"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "kubernetes-validate: {}{}",
        String::from_utf8_lossy(&o.stdout),
        stderr(&o)
    );

    // The check itself can fail: a misspelt field is caught.
    let broken = dir.path().join("broken.yaml");
    let text = std::fs::read_to_string(&files[0]).unwrap().replacen(
        "revisionHistoryLimit",
        "revisionHistoryLimt",
        1,
    );
    std::fs::write(&broken, text).unwrap();
    let o = Command::new(&validator)
        .args(["--strict", "--quiet", "--kubernetes-version", "1.33.0"])
        .arg(&broken)
        .output()
        .unwrap();
    assert!(
        !o.status.success(),
        "kubernetes-validate accepted an unknown field"
    );
}
