//! The real binary, end to end: exit codes, where errors point, nothing half-written.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

mod common;

use common::{example, run, stderr, stdout};

#[test]
fn examples_validate() {
    for name in ["minimal", "shop", "aws"] {
        let path = example(name);
        let o = run(&["validate", "--render", "-f", path.to_str().unwrap()]);
        assert!(o.status.success(), "{name}: {}", stderr(&o));
        assert!(stdout(&o).ends_with(": valid\n"), "{}", stdout(&o));
    }
}

#[test]
fn invalid_file_exits_1_and_points_at_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(example("minimal"))
        .unwrap()
        .replace(
            "      replicas: 1\n",
            "      replicas: 1\n      replica: 2\n",
        );
    std::fs::write(&path, text).unwrap();
    let o = run(&["validate", "-f", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(stdout(&o), "");
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "{}:12:7: spec.services[0].replica: unknown field `replica`",
            path.display()
        )),
        "{err}"
    );
}

#[test]
fn dangling_reference_is_reported_with_its_field_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dangling.yaml");
    let text = std::fs::read_to_string(example("minimal"))
        .unwrap()
        .replace("database: users", "database: nope");
    std::fs::write(&path, text).unwrap();
    let o = run(&["validate", "-f", path.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "spec.services[0].database: every services[].database must name an entry of spec.databases"
        ),
        "{}",
        stderr(&o)
    );
}

#[test]
fn missing_file_is_an_error_not_a_panic() {
    let o = run(&["render", "-f", "/nonexistent/p.yaml"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("/nonexistent/p.yaml: cannot read the file"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn render_is_byte_identical_across_runs_and_formats_agree() {
    let shop = example("shop");
    let a = run(&["render", "-f", shop.to_str().unwrap()]);
    let b = run(&["render", "-f", shop.to_str().unwrap()]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    let json = run(&["render", "-f", shop.to_str().unwrap(), "-o", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let docs = stdout(&a).split("\n---\n").count();
    assert_eq!(list["items"].as_array().unwrap().len(), docs);
    assert!(!stdout(&a).contains("password: ") || stdout(&a).contains("password: REDACTED"));
}

#[test]
fn show_secrets_prints_generated_values() {
    let shop = example("shop");
    let o = run(&["render", "-f", shop.to_str().unwrap(), "--show-secrets"]);
    assert!(o.status.success());
    assert!(!stdout(&o).contains("REDACTED"));
}

#[test]
fn out_dir_gets_one_file_per_object_and_nothing_on_failure() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("manifests");
    let o = run(&[
        "render",
        "-f",
        example("minimal").to_str().unwrap(),
        "--out-dir",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let files: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.ends_with("-deployment-demo-users.yaml")),
        "{files:?}"
    );

    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "apiVersion: panthera.dev/v1alpha1\nkind: PantheraPlatform\nmetadata: {name: x}\nspec: {services: [{name: A, kind: users}]}\n").unwrap();
    let fresh = dir.path().join("fresh");
    let o = run(&[
        "render",
        "-f",
        bad.to_str().unwrap(),
        "--out-dir",
        fresh.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        !fresh.exists(),
        "nothing is written for an invalid platform"
    );

    // A folder with other files is never replaced.
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    std::fs::write(mixed.join("notes.txt"), "mine").unwrap();
    let o = run(&[
        "render",
        "-f",
        example("minimal").to_str().unwrap(),
        "--out-dir",
        mixed.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        std::fs::read_to_string(mixed.join("notes.txt")).unwrap(),
        "mine"
    );
}

#[test]
fn plan_json_counts_match_render() {
    let shop = example("shop");
    let plan = run(&["plan", "-f", shop.to_str().unwrap(), "-o", "json"]);
    assert!(plan.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let render = run(&["render", "-f", shop.to_str().unwrap(), "-o", "json"]);
    let render: serde_json::Value = serde_json::from_slice(&render.stdout).unwrap();
    assert_eq!(
        plan["summary"]["add"],
        render["items"].as_array().unwrap().len()
    );
    let text = run(&["plan", "-f", shop.to_str().unwrap()]);
    assert!(stdout(&text).contains("+ StatefulSet/shop-db-users"));
}

#[test]
fn init_writes_valid_examples_and_never_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.yaml");
    let o = run(&[
        "init",
        "--example",
        "shop",
        "--name",
        "acme",
        "-n",
        "acme",
        path.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("name: acme") && text.contains("namespace: acme"));
    assert!(
        run(&["validate", "-f", path.to_str().unwrap()])
            .status
            .success()
    );
    let again = run(&["init", path.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
    let bad_name = run(&["init", "--name", "Not_A_Label"]);
    assert_eq!(bad_name.status.code(), Some(1));
}

#[test]
fn every_verb_has_help_with_examples() {
    for verb in ["init", "validate", "render", "plan", "crd", "completions"] {
        let o = run(&[verb, "--help"]);
        assert!(o.status.success(), "{verb}");
        assert!(
            stdout(&o).contains("Examples:"),
            "{verb} --help has no examples"
        );
    }
    let o = run(&["completions", "bash"]);
    assert!(stdout(&o).contains("panthera"));
}

#[test]
fn crd_output_is_the_committed_file() {
    let o = run(&["crd"]);
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/crds/pantheraplatform.yaml"
    ))
    .unwrap();
    assert_eq!(stdout(&o), committed);
}
