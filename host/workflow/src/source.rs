//! A workflow file's text and where each of its values sits in it, so every
//! problem can name `file:line:column`.
//!
//! serde_yaml builds the model but forgets positions; a second, marked pass
//! of the event parser (yaml-rust2) maps each value's path
//! (`tasks.clone.next[0].do`) to the line and column it starts at.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use yaml_rust2::parser::{MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
use yaml_rust2::Event;

/// A line and column, both counted from 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

/// One thing wrong with a workflow, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    pub file: PathBuf,
    pub position: Position,
    /// The value's path in the document (`tasks.clone.input.spec.cpus`).
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: ",
            self.file.display(),
            self.position.line,
            self.position.column
        )?;
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// The problems found in one file, shown one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Problems {}

/// A workflow file as read from disk.
#[derive(Clone, Debug)]
pub struct Source {
    pub path: PathBuf,
    pub text: String,
    positions: HashMap<String, Entry>,
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Where the mapping key naming this value starts, for map entries.
    key: Option<Position>,
    value: Position,
}

impl Source {
    pub fn new(path: &Path, text: String) -> Self {
        let mut locator = Locator::default();
        // A document that does not parse is reported by serde_yaml, with
        // its position; the positions are only needed for valid YAML.
        let _ = Parser::new_from_str(&text).load(&mut locator, false);
        Self {
            path: path.to_owned(),
            text,
            positions: locator.positions,
        }
    }

    /// Where the value at `path` starts; the nearest enclosing value that
    /// is known if it is not there.
    pub fn position(&self, path: &str) -> Position {
        let mut p = path;
        loop {
            if let Some(e) = self.positions.get(p) {
                return e.value;
            }
            if let Some(e) = self.in_list_of_maps(p) {
                return e.value;
            }
            match parent_path(p) {
                Some(up) => p = up,
                None => return Position { line: 1, column: 1 },
            }
        }
    }

    /// `a.b.k` written as a list of one-key maps (Orquesta's `publish:
    /// [{k: v}]`), which the model reads as the map `a.b`: `a.b[i].k`.
    fn in_list_of_maps(&self, path: &str) -> Option<&Entry> {
        let (parent, key) = path.rsplit_once('.')?;
        (0..)
            .map_while(|i| {
                let item = format!("{parent}[{i}]");
                self.positions
                    .contains_key(&item)
                    .then(|| self.positions.get(&format!("{item}.{key}")))
            })
            .flatten()
            .next()
    }

    /// Where the key of the map entry at `path` starts (a task's name, say).
    pub fn key_position(&self, path: &str) -> Position {
        match self.positions.get(path).and_then(|e| e.key) {
            Some(k) => k,
            None => self.position(path),
        }
    }

    pub fn problem(&self, path: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: self.path.clone(),
            position: self.position(path),
            path: path.to_owned(),
            message: message.into(),
        }
    }

    /// A problem with a map entry as a whole, shown at its key.
    pub fn key_problem(&self, path: &str, message: impl Into<String>) -> Problem {
        Problem {
            position: self.key_position(path),
            ..self.problem(path, message)
        }
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins path segments the way error messages show them.
pub fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

enum Frame {
    Map {
        path: String,
        /// The key just read, waiting for its value.
        key: Option<(String, Position)>,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Locator {
    stack: Vec<Frame>,
    positions: HashMap<String, Entry>,
}

impl Locator {
    /// The path of the value starting now, and the key it sits under.
    /// Returns `None` when the scalar is a map key.
    fn value_path(&mut self, scalar_key: Option<&str>, at: Position) -> Option<(String, Entry)> {
        match self.stack.last_mut() {
            None => Some((
                String::new(),
                Entry {
                    key: None,
                    value: at,
                },
            )),
            Some(Frame::Seq { path, next }) => {
                let p = index(path, *next);
                *next += 1;
                Some((
                    p,
                    Entry {
                        key: None,
                        value: at,
                    },
                ))
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some((k, key_at)) => Some((
                    join(path, &k),
                    Entry {
                        key: Some(key_at),
                        value: at,
                    },
                )),
                None => {
                    *key = Some((scalar_key.unwrap_or("?").to_owned(), at));
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Locator {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let at = Position {
            line: mark.line(),
            column: mark.col() + 1,
        };
        match ev {
            Event::Scalar(text, ..) => {
                if let Some((path, entry)) = self.value_path(Some(&text), at) {
                    self.positions.insert(path, entry);
                }
            }
            Event::Alias(_) => {
                if let Some((path, entry)) = self.value_path(Some("*"), at) {
                    self.positions.insert(path, entry);
                }
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                // A map used as a key is not something workflows do.
                let (path, entry) = self.value_path(Some("?"), at).unwrap_or_else(|| {
                    let entry = Entry {
                        key: None,
                        value: at,
                    };
                    ("?".to_owned(), entry)
                });
                self.positions.insert(path.clone(), entry);
                self.stack.push(if matches!(ev, Event::MappingStart(..)) {
                    Frame::Map { path, key: None }
                } else {
                    Frame::Seq { path, next: 0 }
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_lines_and_columns() {
        let text = "version: 1\ntasks:\n  a:\n    action: x.wasm\n    next:\n      - do: [b, c]\n        when: \"{{ succeeded() }}\"\n";
        let s = Source::new(Path::new("w.yaml"), text.into());
        assert_eq!(
            s.position("version"),
            Position {
                line: 1,
                column: 10
            }
        );
        assert_eq!(s.key_position("tasks.a"), Position { line: 3, column: 3 });
        assert_eq!(
            s.position("tasks.a.action"),
            Position {
                line: 4,
                column: 13
            }
        );
        assert_eq!(
            s.position("tasks.a.next[0].do[1]"),
            Position {
                line: 6,
                column: 17
            }
        );
        assert_eq!(
            s.position("tasks.a.next[0].when"),
            Position {
                line: 7,
                column: 15
            }
        );
        // Unknown paths fall back to the nearest known parent.
        assert_eq!(
            s.position("tasks.a.action.nope"),
            Position {
                line: 4,
                column: 13
            }
        );
    }
}
