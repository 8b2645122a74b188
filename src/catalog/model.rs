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
