//! A bound on nesting, checked in one pass before any YAML parser sees the text.
//!
//! The parsers behind `load` spend time superlinear in nesting depth: 200 KB of `[[[[...` took
//! 30 s of CPU before the answer "recursion limit exceeded". The API server bounds the depth of
//! the JSON it accepts for the same reason; a platform nests about ten levels deep (an override
//! patch of a container's security context a few more), so anything past [`MAX_DEPTH`] is
//! refused at once, at the line and column where it crosses the bound.

use super::positions::Position;

/// Deepest nesting of mappings and sequences accepted.
pub const MAX_DEPTH: usize = 100;

/// The position where `text` first nests deeper than `max`, if it does. Counts flow
/// collections (`[`, `{`), block indentation levels and `- ` entries, outside quotes and
/// comments. It may count a little more than a parser would (it does not know every YAML
/// nuance) but never less than the flow nesting, which is what makes parsers slow.
pub fn too_deep(text: &str, max: usize) -> Option<Position> {
    let mut indents: Vec<usize> = Vec::new();
    let mut flow = 0usize;
    for (line_index, line) in text.lines().enumerate() {
        let position = |column: usize| Position {
            line: line_index + 1,
            column: column + 1,
        };
        let content = line.trim_start_matches(' ');
        let indent = line.len() - content.len();
        if flow == 0 && !content.is_empty() && !content.starts_with('#') {
            while indents.last().is_some_and(|&top| top >= indent) {
                indents.pop();
            }
            indents.push(indent);
            // `- - - x` opens a sequence per dash on one line.
            let mut rest = content;
            let mut dashes = 0;
            while let Some(r) = rest.strip_prefix("- ") {
                dashes += 1;
                rest = r.trim_start_matches(' ');
            }
            if indents.len() + dashes > max {
                return Some(position(indent));
            }
        }
        let mut quote: Option<char> = None;
        let mut previous = ' ';
        let mut chars = line.char_indices().peekable();
        while let Some((column, c)) = chars.next() {
            match (quote, c) {
                (Some('"'), '\\') => {
                    chars.next();
                }
                (Some('\''), '\'') if chars.peek().is_some_and(|&(_, n)| n == '\'') => {
                    chars.next();
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '"' | '\'') if previous.is_whitespace() || "[{,:".contains(previous) => {
                    quote = Some(c)
                }
                (None, '#') if previous.is_whitespace() => break,
                (None, '[' | '{') => {
                    flow += 1;
                    if indents.len() + flow > max {
                        return Some(position(column));
                    }
                }
                (None, ']' | '}') => flow = flow.saturating_sub(1),
                _ => {}
            }
            previous = c;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_deep_flow_nesting_at_the_bracket_that_crosses_the_bound() {
        let text = format!("spec: {}{}\n", "[".repeat(200), "]".repeat(200));
        let at = too_deep(&text, MAX_DEPTH).unwrap();
        assert_eq!((at.line, at.column), (1, 6 + MAX_DEPTH));
    }

    #[test]
    fn refuses_deep_block_nesting_and_dash_chains() {
        let mut text = String::new();
        for i in 0..150 {
            text.push_str(&format!("{}k{i}:\n", " ".repeat(i)));
        }
        assert_eq!(too_deep(&text, MAX_DEPTH).unwrap().line, MAX_DEPTH + 1);
        let dashes = format!("spec:\n  {}x\n", "- ".repeat(150));
        assert_eq!(too_deep(&dashes, MAX_DEPTH).unwrap().line, 2);
    }

    #[test]
    fn accepts_every_example_and_ignores_brackets_in_strings_and_comments() {
        for example in ["minimal", "shop", "aws"] {
            let path = format!("{}/examples/{example}.yaml", env!("CARGO_MANIFEST_DIR"));
            let text = std::fs::read_to_string(path).unwrap_or_default();
            assert!(!text.is_empty());
            assert_eq!(too_deep(&text, 12), None, "{example}");
        }
        let text = format!(
            "a: \"{0}\"\nb: '{0}'\nc: x # {0}\nd: \"\\\"[\"\n",
            "[".repeat(500)
        );
        assert_eq!(too_deep(&text, 3), None);
    }
}
