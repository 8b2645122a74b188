//! Singer STATE: `{"currently_syncing": ..., "bookmarks": {"<stream>": {...}}}`, compatible
//! with pipelinewise-tap-mysql.
//!
//! Bookmarks of streams not in this run are carried through untouched, so one invocation per
//! stream from a scheduler never clobbers another's state. Unknown top-level keys are kept.

use std::path::Path;

use serde_json::{Map, Value};

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

    /// The bookmark of a stream (empty when none).
    pub(crate) fn bookmark(&self, stream: &str) -> Map<String, Value> {
        self.doc
            .get("bookmarks")
            .and_then(|b| b.get(stream))
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    }

    /// Replaces a stream's bookmark.
    pub(crate) fn set_bookmark(&mut self, stream: &str, bookmark: Map<String, Value>) {
        let bookmarks = self
            .doc
            .entry("bookmarks")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(b) = bookmarks {
            b.insert(stream.to_string(), Value::Object(bookmark));
        }
    }

    /// Marks chunk `index` of a chunked FULL_TABLE bookmark as done, or records its last key.
    pub(crate) fn update_chunk(
        &mut self,
        stream: &str,
        index: usize,
        last_pk: Option<Map<String, Value>>,
        done: bool,
    ) {
        let Some(Value::Object(chunk)) = self
            .doc
            .get_mut("bookmarks")
            .and_then(|b| b.get_mut(stream))
            .and_then(|b| b.get_mut("chunks"))
            .and_then(|c| c.get_mut(index))
        else {
            return;
        };
        if done {
            chunk.remove("last_pk_fetched");
            chunk.insert("done".into(), Value::Bool(true));
        } else if let Some(pk) = last_pk {
            chunk.insert("last_pk_fetched".into(), Value::Object(pk));
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_other_streams_and_unwraps() {
        let mut s = State::from_value(json!({"value": {"bookmarks": {"a": {"x": 1}}}})).unwrap();
        s.set_bookmark("b", Map::new());
        s.set_currently_syncing(Some("b"));
        assert_eq!(
            s.as_value(),
            json!({"bookmarks": {"a": {"x": 1}, "b": {}}, "currently_syncing": "b"})
        );
        assert!(State::from_value(json!([1])).is_err());
        assert!(State::from_value(json!({"bookmarks": {"a": 1}})).is_err());
        assert_eq!(
            State::from_value(json!({})).unwrap().bookmark("x"),
            Map::new()
        );
    }
}
