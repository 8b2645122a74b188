//! Writing the discovered catalog: one stream at a time, as it is discovered.
//!
//! The output is exactly `serde_json::to_string_pretty` of `{"streams": [...]}` plus a newline,
//! written piece by piece: the opening, each stream (indented to its place), the end. Only one
//! stream exists as JSON at a time.

use std::io::Write;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::discover::TableInfo;
use super::types::ColumnKind;
use crate::config::TypeOptions;

/// One discovered stream (table or view) as the catalog prints it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct DiscoveredStream {
    /// `<database>-<table>`.
    pub tap_stream_id: String,
    /// The table's own name.
    pub table_name: String,
    /// Same as `tap_stream_id`.
    pub stream: String,
    /// JSON Schema of a record.
    pub schema: Value,
    /// Singer metadata entries.
    pub metadata: Vec<MetadataEntry>,
}

/// One metadata entry: a breadcrumb and its key/values.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct MetadataEntry {
    /// `[]` for the stream, `["properties", "<column>"]` for a field.
    pub breadcrumb: Vec<String>,
    /// The metadata.
    pub metadata: Map<String, Value>,
}

/// Writes `{"streams": [...]}` one stream at a time.
pub(crate) struct CatalogWriter<W: Write> {
    out: W,
    written: usize,
}

/// Indentation of a stream inside `{"streams": [...]}` (pretty printing's two spaces a level).
const STREAM_INDENT: &[u8] = b"    ";

impl<W: Write> CatalogWriter<W> {
    /// Starts the catalog.
    pub(crate) fn start(mut out: W) -> std::io::Result<Self> {
        out.write_all(b"{\n  \"streams\": [")?;
        Ok(CatalogWriter { out, written: 0 })
    }

    /// Writes one stream.
    pub(crate) fn stream(&mut self, s: &DiscoveredStream) -> std::io::Result<()> {
        let text = serde_json::to_vec_pretty(s)?;
        self.out
            .write_all(if self.written == 0 { b"\n" } else { b",\n" })?;
        self.out.write_all(STREAM_INDENT)?;
        // JSON text holds no raw newline inside a string: every one is the printer's.
        for (i, line) in text.split(|&b| b == b'\n').enumerate() {
            if i > 0 {
                self.out.write_all(b"\n")?;
                self.out.write_all(STREAM_INDENT)?;
            }
            self.out.write_all(line)?;
        }
        self.written += 1;
        Ok(())
    }

    /// Ends the catalog (and its line); returns the number of streams written.
    pub(crate) fn finish(mut self) -> std::io::Result<usize> {
        self.out.write_all(if self.written == 0 {
            b"]\n}\n"
        } else {
            b"\n  ]\n}\n"
        })?;
        self.out.flush()?;
        Ok(self.written)
    }
}

/// The catalog stream of a discovered table.
pub(crate) fn build_stream(t: &TableInfo, opts: &TypeOptions) -> DiscoveredStream {
    let id = t.stream_id();
    let mut properties = Map::new();
    let mut field_metadata = Vec::new();
    for c in &t.columns {
        let mut schema = c.kind.json_schema(c.nullable, opts);
        let unsupported = c.kind == ColumnKind::Unsupported;
        if unsupported {
            if let Value::Object(m) = &mut schema {
                m.insert(
                    "description".into(),
                    json!(format!("unsupported column type {}", c.column_type)),
                );
            }
        }
        properties.insert(c.name.clone(), schema);
        let inclusion = if unsupported {
            "unsupported"
        } else if t.key.contains(&c.name) {
            "automatic"
        } else {
            "available"
        };
        let mut m = Map::new();
        m.insert("inclusion".into(), json!(inclusion));
        m.insert("selected-by-default".into(), json!(!unsupported));
        m.insert("sql-datatype".into(), json!(c.column_type));
        field_metadata.push(MetadataEntry {
            breadcrumb: vec!["properties".into(), c.name.clone()],
            metadata: m,
        });
    }
    let mut metadata = vec![MetadataEntry {
        breadcrumb: vec![],
        metadata: stream_metadata(t),
    }];
    metadata.extend(field_metadata);
    DiscoveredStream {
        tap_stream_id: id.clone(),
        table_name: t.name.clone(),
        stream: id,
        schema: json!({"type": "object", "properties": properties}),
        metadata,
    }
}

fn stream_metadata(t: &TableInfo) -> Map<String, Value> {
    let replication_keys: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.kind.is_replication_key_candidate())
        .map(|c| c.name.as_str())
        .collect();
    let mut sm = Map::new();
    sm.insert("table-key-properties".into(), json!(t.key));
    if t.is_view && replication_keys.is_empty() {
        // A view has no binlog events and nothing to bookmark on: only FULL_TABLE works.
        sm.insert("forced-replication-method".into(), json!("FULL_TABLE"));
    }
    sm.insert("valid-replication-keys".into(), json!(replication_keys));
    sm.insert("database-name".into(), json!(t.database));
    sm.insert("is-view".into(), json!(t.is_view));
    if let Some(n) = t.row_count {
        sm.insert("row-count".into(), json!(n));
    }
    sm.insert("selected-by-default".into(), json!(false));
    sm
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::discover::ColumnInfo;

    fn table(name: &str, columns: &[&str]) -> TableInfo {
        TableInfo {
            database: "shop".into(),
            name: name.into(),
            is_view: false,
            row_count: Some(3),
            columns: columns
                .iter()
                .map(|c| ColumnInfo {
                    name: c.to_string(),
                    column_type: "varchar(8)".into(),
                    nullable: true,
                    charset: Some("utf8mb4".into()),
                    kind: ColumnKind::Text { max_chars: Some(8) },
                })
                .collect(),
            key: vec![],
            key_index: None,
        }
    }

    fn written(tables: &[TableInfo]) -> String {
        let opts = TypeOptions::default();
        let mut out = Vec::new();
        let mut w = CatalogWriter::start(&mut out).unwrap();
        for t in tables {
            w.stream(&build_stream(t, &opts)).unwrap();
        }
        assert_eq!(w.finish().unwrap(), tables.len());
        String::from_utf8(out).unwrap()
    }

    /// The catalog as one pretty-printed document (what discovery printed before streaming).
    fn whole(tables: &[TableInfo]) -> String {
        let opts = TypeOptions::default();
        let streams: Vec<DiscoveredStream> =
            tables.iter().map(|t| build_stream(t, &opts)).collect();
        let mut text = serde_json::to_string_pretty(&json!({ "streams": streams })).unwrap();
        text.push('\n');
        text
    }

    #[test]
    fn streamed_output_is_the_pretty_printed_document() {
        let odd = table("we\"ird\nname", &["a\nb", "c\\d", "é"]);
        for tables in [
            vec![],
            vec![table("a", &["id"])],
            vec![table("a", &["id", "x"]), table("b", &[]), odd],
        ] {
            assert_eq!(written(&tables), whole(&tables));
        }
    }
}
