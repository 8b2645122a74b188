//! The Singer catalog as it appears on the wire: discovery writes it, sync reads it back.
//!
//! Unknown keys are kept (Meltano adds legacy `selected`, `replication_method`, ... to streams).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A Singer catalog.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Catalog {
    /// Streams in output order.
    pub streams: Vec<CatalogStream>,
}

/// One stream (table or view).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct CatalogStream {
    /// `<database>-<table>`.
    pub tap_stream_id: String,
    /// The table's own name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table_name: Option<String>,
    /// Same as `tap_stream_id`.
    #[serde(default)]
    pub stream: String,
    /// JSON Schema of a record.
    pub schema: Value,
    /// Singer metadata entries.
    #[serde(default)]
    pub metadata: Vec<MetadataEntry>,
    /// Anything else (legacy keys Meltano writes); kept as is.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One metadata entry: a breadcrumb and its key/values.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct MetadataEntry {
    /// `[]` for the stream, `["properties", "<column>"]` for a field.
    pub breadcrumb: Vec<String>,
    /// The metadata.
    pub metadata: Map<String, Value>,
}

impl CatalogStream {
    /// The metadata map at a breadcrumb, if present.
    pub(crate) fn metadata_at(&self, breadcrumb: &[&str]) -> Option<&Map<String, Value>> {
        self.metadata
            .iter()
            .find(|m| {
                m.breadcrumb
                    .iter()
                    .map(String::as_str)
                    .eq(breadcrumb.iter().copied())
            })
            .map(|m| &m.metadata)
    }

    /// Stream-level metadata (breadcrumb `[]`).
    pub(crate) fn stream_metadata(&self) -> Option<&Map<String, Value>> {
        self.metadata_at(&[])
    }

    /// Field-level metadata of a column.
    pub(crate) fn field_metadata(&self, column: &str) -> Option<&Map<String, Value>> {
        self.metadata_at(&["properties", column])
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn meltano_stream() -> Value {
        json!({
            "tap_stream_id": "shop-orders",
            "table_name": "orders",
            "stream": "shop-orders",
            "schema": {"type": "object", "properties": {"id": {"type": "integer"}}, "selected": true},
            "metadata": [
                {"breadcrumb": [], "metadata": {"selected": true, "replication-method": "LOG_BASED"}},
                {"breadcrumb": ["properties", "id"], "metadata": {"inclusion": "automatic", "x-custom": [1, 2]}}
            ],
            "selected": true,
            "replication_method": "INCREMENTAL",
            "replication_key": "id",
            "key_properties": ["id"],
            "x-meltano": {"nested": {"kept": true}}
        })
    }

    #[test]
    fn a_round_trip_keeps_unknown_keys() {
        let text = json!({"streams": [meltano_stream()]}).to_string();
        let cat: Catalog = serde_json::from_str(&text).unwrap();
        let s = &cat.streams[0];
        assert_eq!(s.extra["replication_method"], "INCREMENTAL");
        assert_eq!(s.extra["x-meltano"], json!({"nested": {"kept": true}}));
        assert!(!s.extra.contains_key("schema"), "known keys are fields");
        assert!(!s.extra.contains_key("tap_stream_id"));
        let back = serde_json::to_value(&cat).unwrap();
        assert_eq!(back["streams"][0], meltano_stream());
    }

    #[test]
    fn optional_keys_default_and_are_left_out() {
        let s: CatalogStream =
            serde_json::from_value(json!({"tap_stream_id": "a-b", "schema": {}})).unwrap();
        assert_eq!(s.table_name, None);
        assert_eq!(s.stream, "");
        assert!(s.metadata.is_empty() && s.extra.is_empty());
        assert_eq!(s.stream_metadata(), None);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            json!({"tap_stream_id": "a-b", "stream": "", "schema": {}, "metadata": []})
        );
        assert!(serde_json::from_value::<CatalogStream>(json!({"tap_stream_id": "a-b"})).is_err());
        assert!(serde_json::from_value::<CatalogStream>(json!({"schema": {}})).is_err());
        let empty: Catalog = serde_json::from_value(json!({"streams": []})).unwrap();
        assert!(empty.streams.is_empty());
        assert!(serde_json::from_value::<Catalog>(json!({})).is_err());
    }

    #[test]
    fn metadata_is_found_by_exact_breadcrumb() {
        let mut v = meltano_stream();
        v["metadata"].as_array_mut().unwrap().extend([
            json!({"breadcrumb": ["properties"], "metadata": {"which": "bare"}}),
            json!({"breadcrumb": ["properties", "id"], "metadata": {"which": "second"}}),
            json!({"breadcrumb": ["properties", "id", "items"], "metadata": {"which": "deeper"}}),
        ]);
        let s: CatalogStream = serde_json::from_value(v).unwrap();
        assert_eq!(
            s.stream_metadata().unwrap()["replication-method"],
            "LOG_BASED"
        );
        let id = s.field_metadata("id").unwrap();
        assert_eq!(id["inclusion"], "automatic", "the first entry wins");
        assert_eq!(s.field_metadata("nope"), None);
        assert_eq!(s.metadata_at(&["properties"]).unwrap()["which"], "bare");
        assert_eq!(
            s.metadata_at(&["properties", "id", "items"]).unwrap()["which"],
            "deeper"
        );
        assert_eq!(s.metadata_at(&["id"]), None);
    }
}
