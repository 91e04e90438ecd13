//! The layers of `src/` only point down (README, "Layout"): a module may name `crate::X` only for
//! an X below it. Read from the sources, so a new upward import fails here, not in review.

use std::path::Path;

/// Each layer and the layers it may use, bottom first.
const LAYERS: &[(&str, &[&str])] = &[
    ("errors", &[]),
    ("api", &["errors"]),
    ("load", &["errors", "api"]),
    ("render", &["errors", "api", "load"]),
    ("cloud", &["errors", "api", "load", "render"]),
    ("engine", &["errors", "api", "load", "render", "cloud"]),
    (
        "operator",
        &["errors", "api", "load", "render", "cloud", "engine"],
    ),
];

/// Every `crate::<layer>` a source file names.
fn layers_named(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        // `crate::{a, b::c}` names each of its first segments.
        let group = rest
            .strip_prefix('{')
            .and_then(|g| g.split_once('}'))
            .map(|(g, _)| g);
        for path in group.map_or(vec![rest], |g| g.split(',').collect()) {
            let name: String = path
                .trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.push(name);
            }
        }
    }
    found
}

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_layer_imports_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut upward = Vec::new();
    let mut checked = 0;
    for (layer, allowed) in LAYERS {
        let mut files = Vec::new();
        let dir = src.join(layer);
        if dir.is_dir() {
            sources(&dir, &mut files);
        } else {
            files.push(src.join(format!("{layer}.rs")));
        }
        assert!(!files.is_empty(), "no sources for layer {layer}");
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            checked += 1;
            for named in layers_named(&text) {
                let known = LAYERS.iter().any(|(l, _)| *l == named) || named == "cli";
                if known && named != *layer && !allowed.contains(&named.as_str()) {
                    upward.push(format!("{} uses crate::{named}", file.display()));
                }
            }
        }
    }
    assert!(checked > 50, "only {checked} files read");
    assert!(upward.is_empty(), "imports that point up: {upward:#?}");
}

#[test]
fn the_check_sees_an_upward_import() {
    let named = layers_named("use crate::engine::Engine;\nuse crate::{cli, render::X};");
    assert_eq!(named, ["engine", "cli", "render"]);
}
