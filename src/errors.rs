//! How an error reads when it reaches a person: the whole chain of causes on one line.

/// `e` and its sources, joined by `: `; a cause whose text an earlier part already holds (SDK
/// and template errors often repeat their source) is left out.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Layer(&'static str, Option<Box<Layer>>);

    impl std::fmt::Display for Layer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Layer {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|l| l as _)
        }
    }

    #[test]
    fn causes_are_joined_and_repeats_left_out() {
        let e = Layer(
            "render failed: bad value",
            Some(Box::new(Layer(
                "bad value",
                Some(Box::new(Layer("line 3", None))),
            ))),
        );
        assert_eq!(chain(&e), "render failed: bad value: line 3");
    }
}
