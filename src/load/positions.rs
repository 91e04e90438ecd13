//! Where each field path of a YAML document starts, so that an error found on the parsed value
//! (a schema or CEL rule) can still point at `file:line:column`.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// Map from a field path (`spec.services[0].name`) to the position of its value.
#[derive(Debug, Default)]
pub struct Positions {
    by_path: HashMap<String, Position>,
}

impl Positions {
    /// Index the first document of `text`; an unparsable text gives an empty index (the parse
    /// error itself is reported by the loader).
    pub fn index(text: &str) -> Self {
        let mut builder = Builder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut builder, false).is_err() {
            return Self::default();
        }
        Self {
            by_path: builder.by_path,
        }
    }

    /// Position of `path`, or of its closest indexed ancestor (a missing field is reported where
    /// its parent is).
    pub fn find(&self, path: &str) -> Option<Position> {
        let mut candidate = path.to_string();
        loop {
            if let Some(position) = self.by_path.get(&candidate) {
                return Some(*position);
            }
            let cut = candidate.rfind(['.', '['])?;
            candidate.truncate(cut);
        }
    }
}

enum Frame {
    Mapping {
        path: String,
        pending_key: Option<String>,
        expecting_key: bool,
    },
    Sequence {
        path: String,
        index: usize,
    },
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    by_path: HashMap<String, Position>,
    documents: usize,
}

impl Builder {
    /// Path of the node that starts now, advancing the parent's key/index state.
    fn next_child_path(&mut self) -> Option<String> {
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Sequence { path, index }) => {
                let child = format!("{path}[{index}]");
                *index += 1;
                Some(child)
            }
            Some(Frame::Mapping {
                path,
                pending_key,
                expecting_key,
            }) => {
                if *expecting_key {
                    None
                } else {
                    *expecting_key = true;
                    let key = pending_key.take().unwrap_or_default();
                    Some(if path.is_empty() {
                        key
                    } else {
                        format!("{path}.{key}")
                    })
                }
            }
        }
    }

    fn scalar_key(&mut self, value: &str) -> bool {
        if let Some(Frame::Mapping {
            pending_key,
            expecting_key,
            ..
        }) = self.stack.last_mut()
            && *expecting_key
        {
            *pending_key = Some(value.to_string());
            *expecting_key = false;
            return true;
        }
        false
    }

    fn record(&mut self, path: &str, mark: Marker) {
        self.by_path.entry(path.to_string()).or_insert(Position {
            line: mark.line(),
            column: mark.col() + 1,
        });
    }
}

impl MarkedEventReceiver for Builder {
    fn on_event(&mut self, event: Event, mark: Marker) {
        if self.documents > 1 {
            return;
        }
        match event {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(value, ..) => {
                if self.scalar_key(&value) {
                    return;
                }
                if let Some(path) = self.next_child_path() {
                    self.record(&path, mark);
                }
            }
            Event::MappingStart(..) => {
                let path = self.next_child_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Mapping {
                    path,
                    pending_key: None,
                    expecting_key: true,
                });
            }
            Event::SequenceStart(..) => {
                let path = self.next_child_path().unwrap_or_default();
                self.record(&path, mark);
                self.stack.push(Frame::Sequence { path, index: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.next_child_path();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_fields_and_list_items() {
        let text = "a: 1\nspec:\n  services:\n    - name: users\n      port: 80\n    - name: b\n";
        let positions = Positions::index(text);
        assert_eq!(positions.find("a"), Some(Position { line: 1, column: 4 }));
        assert_eq!(
            positions.find("spec.services[0].port"),
            Some(Position {
                line: 5,
                column: 13
            })
        );
        assert_eq!(
            positions.find("spec.services[1].name"),
            Some(Position {
                line: 6,
                column: 13
            })
        );
        // A missing field falls back to its parent.
        assert_eq!(
            positions.find("spec.services[1].image"),
            positions.find("spec.services[1]")
        );
    }
}
