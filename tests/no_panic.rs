//! No input makes the loader or the renderer panic: arbitrary text, and the shop example with
//! random edits (values of the wrong type, removed keys, out-of-range numbers).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use panthera::render::{Redacted, Renderer};
use proptest::prelude::*;

const SHOP: &str = include_str!("../examples/shop.yaml");

fn any_scalar() -> impl Strategy<Value = serde_yaml::Value> {
    prop_oneof![
        any::<i64>().prop_map(|n| serde_yaml::Value::Number(n.into())),
        any::<bool>().prop_map(serde_yaml::Value::Bool),
        ".{0,12}".prop_map(serde_yaml::Value::String),
        Just(serde_yaml::Value::Null),
        Just(serde_yaml::Value::Sequence(vec![])),
    ]
}

/// Replace the `n`-th node (pre-order) of `v` with `replacement`, or delete it when `None`.
fn edit(v: &mut serde_yaml::Value, n: &mut usize, replacement: &Option<serde_yaml::Value>) -> bool {
    match v {
        serde_yaml::Value::Mapping(m) => {
            let keys: Vec<_> = m.keys().cloned().collect();
            for k in keys {
                if *n == 0 {
                    match replacement {
                        Some(r) => {
                            m.insert(k, r.clone());
                        }
                        None => {
                            m.remove(&k);
                        }
                    }
                    return true;
                }
                *n -= 1;
                if let Some(child) = m.get_mut(&k)
                    && edit(child, n, replacement)
                {
                    return true;
                }
            }
            false
        }
        serde_yaml::Value::Sequence(s) => {
            for child in s.iter_mut() {
                if *n == 0 {
                    if let Some(r) = replacement {
                        *child = r.clone();
                    }
                    return true;
                }
                *n -= 1;
                if edit(child, n, replacement) {
                    return true;
                }
            }
            false
        }
        _ => false,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        let _ = panthera::load::load_str("fuzz.yaml", &text);
    }

    #[test]
    fn edited_platforms_never_panic(edits in proptest::collection::vec((0usize..400, proptest::option::of(any_scalar())), 1..4)) {
        let mut value: serde_yaml::Value = serde_yaml::from_str(SHOP).unwrap();
        for (index, replacement) in &edits {
            let mut n = *index;
            edit(&mut value, &mut n, replacement);
        }
        let text = serde_yaml::to_string(&value).unwrap();
        // The native rules of `validate` agree with the CRD's CEL on whatever types-check (but for
        // the few the CRD cannot hold).
        // (An API server always has metadata.name; without it the loader stops earlier.)
        if let Ok(typed) = serde_yaml::from_str::<panthera::api::PantheraPlatform>(&text).map_err(|_| ()).and_then(|t| if t.metadata.name.is_some() { Ok(t) } else { Err(()) }) {
            let native: std::collections::BTreeSet<String> = panthera::load::native_messages(&typed).into_iter().filter(|m| !panthera::api::rules::NATIVE_ONLY.contains(&m.as_str())).collect();
            let cel: std::collections::BTreeSet<String> = panthera::load::cel_messages(&typed).into_iter().collect();
            prop_assert_eq!(native, cel, "{}", text);
        }
        if let Ok(platform) = panthera::load::load_str("fuzz.yaml", &text) {
            // Whatever validates must render.
            let rendered = Renderer::embedded().unwrap().render(&platform, &Redacted);
            prop_assert!(rendered.is_ok(), "valid platform failed to render: {:?}\n{}", rendered.err(), text);
        }
    }
}
