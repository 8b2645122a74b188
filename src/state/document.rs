//! The state document: `{"currently_syncing": ..., "bookmarks": {"<stream>": {...}}}`,
//! compatible with pipelinewise-tap-mysql.
//!
//! Bookmarks of streams not in this run are carried through untouched, so one invocation per
//! stream from a scheduler never clobbers another's state. Unknown top-level keys are kept.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Bookmark, KeyValues};
use crate::error::{Error, Result};

/// The whole state document.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    doc: Map<String, Value>,
}

impl State {
    /// Reads a state file. Accepts the plain state and the `{"value": {...}}` wrapper some
    /// runners store.
    pub(crate) fn load(path: &Path) -> Result<State> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::usage(format!("cannot read state file {}: {e}", path.display())))?;
        if text.trim().is_empty() {
            return Ok(State::default());
        }
        let value: Value = serde_json::from_str(&text).map_err(|e| {
            Error::usage(format!(
                "state file {} is not valid JSON: {e}",
                path.display()
            ))
        })?;
        State::from_value(value)
            .map_err(|msg| Error::usage(format!("state file {}: {msg}", path.display())))
    }

    /// Builds a state from a parsed document.
    pub fn from_value(value: Value) -> std::result::Result<State, String> {
        let Value::Object(mut doc) = value else {
            return Err("must hold a JSON object".into());
        };
        if !doc.contains_key("bookmarks") {
            if let Some(Value::Object(inner)) = doc.get("value") {
                if inner.contains_key("bookmarks") {
                    doc = inner.clone();
                }
            }
        }
        match doc.get("bookmarks") {
            None | Some(Value::Null) => {
                doc.insert("bookmarks".into(), Value::Object(Map::new()));
            }
            Some(Value::Object(b)) => {
                if let Some((k, _)) = b.iter().find(|(_, v)| !v.is_object()) {
                    return Err(format!("bookmark of stream '{k}' must be an object"));
                }
            }
            Some(_) => return Err("'bookmarks' must be an object".into()),
        }
        Ok(State { doc })
    }

    /// The bookmark of a stream (empty when none). A bookmark that is not the shape this tap
    /// writes is a usage error naming the stream and the key.
    pub(crate) fn bookmark(&self, stream: &str) -> Result<Bookmark> {
        match self.doc.get("bookmarks").and_then(|b| b.get(stream)) {
            Some(Value::Object(m)) => Bookmark::from_map(m.clone()).map_err(|msg| {
                Error::usage(format!(
                    "state: stream '{stream}': {msg} (fix the bookmark, or remove it from the state to start the stream over)"
                ))
            }),
            _ => Ok(Bookmark::default()),
        }
    }

    /// Replaces a stream's bookmark.
    pub(crate) fn set_bookmark(&mut self, stream: &str, bookmark: &Bookmark) {
        let bookmarks = self
            .doc
            .entry("bookmarks")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(b) = bookmarks {
            b.insert(stream.to_string(), Value::Object(bookmark.to_map()));
        }
    }

    /// Progress of chunk `index` of a chunked FULL_TABLE load (see [`Bookmark::update_chunk`]).
    pub(crate) fn update_chunk(
        &mut self,
        stream: &str,
        index: usize,
        last_pk: Option<KeyValues>,
        done: bool,
    ) {
        let Some(Value::Object(m)) = self
            .doc
            .get_mut("bookmarks")
            .and_then(|b| b.get_mut(stream))
        else {
            return;
        };
        // The writer only updates chunks of a bookmark it wrote itself: it always reads.
        if let Ok(mut b) = Bookmark::from_map(m.clone()) {
            b.update_chunk(index, last_pk, done);
            *m = b.to_map();
        }
    }

    /// The stream a previous run was in the middle of.
    pub(crate) fn currently_syncing(&self) -> Option<&str> {
        self.doc.get("currently_syncing").and_then(Value::as_str)
    }

    /// Sets `currently_syncing`.
    pub(crate) fn set_currently_syncing(&mut self, stream: Option<&str>) {
        self.doc.insert(
            "currently_syncing".into(),
            stream.map_or(Value::Null, |s| Value::String(s.to_string())),
        );
    }

    /// A top-level key's value.
    pub(super) fn top_level(&self, key: &str) -> Option<&Value> {
        self.doc.get(key)
    }

    /// Sets (or, with None, removes) a top-level key.
    pub(super) fn set_top_level(&mut self, key: &str, value: Option<Value>) {
        match value {
            Some(v) => {
                self.doc.insert(key.to_string(), v);
            }
            None => {
                self.doc.remove(key);
            }
        }
    }

    /// The greatest table `version` in any bookmark.
    pub(crate) fn max_version(&self) -> Option<u64> {
        self.doc
            .get("bookmarks")
            .and_then(Value::as_object)?
            .values()
            .filter_map(|b| b.get("version").and_then(Value::as_u64))
            .max()
    }

    /// The document.
    #[cfg(test)]
    pub(crate) fn as_value(&self) -> Value {
        Value::Object(self.doc.clone())
    }

    /// A complete `STATE` message line.
    pub(crate) fn message(&self) -> Vec<u8> {
        let mut out = br#"{"type":"STATE","value":"#.to_vec();
        // Serializing a Map of JSON values cannot fail.
        let _ = serde_json::to_writer(&mut out, &self.doc);
        out.extend_from_slice(b"}\n");
        out
    }
}
