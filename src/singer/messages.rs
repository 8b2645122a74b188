//! The fixed Singer messages (SCHEMA, ACTIVATE_VERSION) and the RECORD frame.
//!
//! RECORD lines are assembled by [`RecordFrame`] from precomputed pieces: the prefix with the
//! stream name, one pre-escaped key per column, and a suffix holding `version` and
//! `time_extracted` (computed once per run).

use serde_json::{json, Value};

use super::super::encode::json::write_str;

/// A `SCHEMA` message line.
///
/// `schema` is the JSON Schema, or its JSON text held in a `Value::String` (how a plan keeps
/// it: one string per stream rather than a tree of values; a JSON Schema is never a string).
pub(crate) fn schema_message(
    stream: &str,
    schema: &SchemaJson,
    key_properties: &[String],
    bookmark_properties: Option<&[String]>,
) -> Vec<u8> {
    let schema_json = schema.as_str();
    // The bytes `json!` would print, keys in this order.
    let mut out = br#"{"type":"SCHEMA","stream":"#.to_vec();
    push_json(&mut out, stream);
    out.extend_from_slice(br#","schema":"#);
    out.extend_from_slice(schema_json.as_bytes());
    out.extend_from_slice(br#","key_properties":"#);
    push_json(&mut out, key_properties);
    if let Some(bp) = bookmark_properties {
        out.extend_from_slice(br#","bookmark_properties":"#);
        push_json(&mut out, bp);
    }
    out.extend_from_slice(b"}\n");
    out
}

/// A stream's JSON Schema as JSON text: one string per stream instead of a tree of values (a
/// plan of 20 columns holds about 2 KB instead of 26 KB), written into SCHEMA messages as is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SchemaJson(Box<str>);

impl SchemaJson {
    /// The text of `schema`.
    pub(crate) fn from_value(schema: &Value) -> SchemaJson {
        SchemaJson(schema.to_string().into_boxed_str())
    }

    /// Text the caller built as JSON (it must be valid JSON).
    pub(crate) fn from_json_text(text: String) -> SchemaJson {
        SchemaJson(text.into_boxed_str())
    }

    /// The JSON text.
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Appends a string or a list of strings as JSON (writing them into a vector cannot fail).
fn push_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) {
    let _ = serde_json::to_writer(&mut *out, v);
}

/// An `ACTIVATE_VERSION` message line.
pub(crate) fn activate_version_message(stream: &str, version: u64) -> Vec<u8> {
    line(&json!({"type": "ACTIVATE_VERSION", "stream": stream, "version": version}))
}

fn line(v: &Value) -> Vec<u8> {
    let mut out = serde_json::to_vec(v).unwrap_or_default();
    out.push(b'\n');
    out
}

/// Precomputed pieces of a stream's RECORD lines.
#[derive(Clone, Debug)]
pub(crate) struct RecordFrame {
    prefix: Vec<u8>,
    keys: Vec<Vec<u8>>,
    suffix: Vec<u8>,
}

impl RecordFrame {
    /// Frames for `stream` with these columns; `version` for FULL_TABLE records.
    pub(crate) fn new(
        stream: &str,
        columns: &[&str],
        version: Option<u64>,
        time_extracted: &str,
    ) -> Self {
        let mut prefix = br#"{"type":"RECORD","stream":"#.to_vec();
        write_str(&mut prefix, stream);
        prefix.extend_from_slice(br#","record":{"#);
        let keys = columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut k = Vec::with_capacity(c.len() + 4);
                if i > 0 {
                    k.push(b',');
                }
                write_str(&mut k, c);
                k.push(b':');
                k
            })
            .collect();
        let mut suffix = b"}".to_vec();
        if let Some(v) = version {
            suffix.extend_from_slice(br#","version":"#);
            suffix.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
        }
        suffix.extend_from_slice(br#","time_extracted":"#);
        write_str(&mut suffix, time_extracted);
        suffix.extend_from_slice(b"}\n");
        RecordFrame {
            prefix,
            keys,
            suffix,
        }
    }

    /// Start of a record line.
    #[inline]
    pub(crate) fn prefix(&self) -> &[u8] {
        &self.prefix
    }

    /// `"column":` (with a leading comma after the first column).
    #[inline]
    pub(crate) fn key(&self, i: usize) -> &[u8] {
        &self.keys[i]
    }

    /// End of a record line, newline included.
    #[inline]
    pub(crate) fn suffix(&self) -> &[u8] {
        &self.suffix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_builds_a_record() {
        let f = RecordFrame::new("db-t", &["id", "na\"me"], Some(7), "2024-01-01T00:00:00Z");
        let mut out = f.prefix().to_vec();
        out.extend_from_slice(f.key(0));
        out.extend_from_slice(b"1");
        out.extend_from_slice(f.key(1));
        out.extend_from_slice(b"\"x\"");
        out.extend_from_slice(f.suffix());
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            json!({"type": "RECORD", "stream": "db-t", "record": {"id": 1, "na\"me": "x"},
                   "version": 7, "time_extracted": "2024-01-01T00:00:00Z"})
        );
        assert!(out.ends_with(b"}\n"));
    }

    #[test]
    fn a_schema_as_text_writes_the_line_json_would() {
        let schema = json!({"type": "object", "properties": {"id": {"type": ["null", "integer"]}}});
        let keys = ["id".to_string()];
        let tree = schema_message(
            "db-\"t",
            &SchemaJson::from_value(&schema),
            &keys,
            Some(&keys),
        );
        let old = json!({"type": "SCHEMA", "stream": "db-\"t", "schema": schema,
                         "key_properties": keys, "bookmark_properties": keys});
        assert_eq!(tree, format!("{old}\n").into_bytes());
        let without = schema_message("s", &SchemaJson::from_value(&schema), &[], None);
        assert_eq!(
            without,
            format!(
                "{}\n",
                json!({"type": "SCHEMA", "stream": "s", "schema": schema, "key_properties": []})
            )
            .into_bytes()
        );
    }
}
