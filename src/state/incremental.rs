//! The keys of an INCREMENTAL stream: `replication_key` (the column) and
//! `replication_key_value` (the greatest value written, as RECORDs carry it, except decimals,
//! which stay exact strings).

use serde_json::Value;

use super::fields::Fields;

/// The INCREMENTAL keys of a bookmark.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct IncrementalBookmark {
    pub(super) replication_key: Option<String>,
    /// Kept as read, `null` included (a `null` is no value).
    pub(super) replication_key_value: Option<Value>,
}

impl IncrementalBookmark {
    /// The keys this part owns.
    pub(super) const KEYS: [&'static str; 2] = ["replication_key", "replication_key_value"];

    pub(super) fn read(f: &mut Fields) -> Result<IncrementalBookmark, String> {
        Ok(IncrementalBookmark {
            replication_key: f.string("replication_key")?,
            replication_key_value: f.any("replication_key_value"),
        })
    }

    /// The JSON value of one of [`Self::KEYS`], when set.
    pub(super) fn value(&self, key: &str) -> Option<Value> {
        match key {
            "replication_key" => self.replication_key.clone().map(Value::String),
            "replication_key_value" => self.replication_key_value.clone(),
            _ => None,
        }
    }

    /// Where the next run resumes (`>=`), when there is a value.
    pub(crate) fn replication_key_value(&self) -> Option<&Value> {
        self.replication_key_value.as_ref().filter(|v| !v.is_null())
    }
}
