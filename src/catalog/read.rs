//! Reading a catalog file a stream at a time into the compact model (`model.rs`).
//!
//! Promises:
//! - The document never exists as JSON values: each stream is parsed (its schema alone as a
//!   value, briefly), converted, and dropped unless it is selected.
//! - Unknown keys are ignored anywhere; values of known keys with another type than expected
//!   are ignored where the planner ignored them before (a non-boolean `selected`, ...).
//! - A malformed catalog is an error naming the stream it was found in.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::model::{Catalog, CatalogColumn, CatalogStream, FieldMetadata, Flag, Inclusion};

/// Reads a catalog from JSON text, keeping only its selected streams. The error names the
/// stream where the text stopped being a catalog.
pub(crate) fn read_catalog(reader: impl std::io::Read) -> Result<Catalog, String> {
    let at = RefCell::new(Position::default());
    let mut de = serde_json::Deserializer::from_reader(reader);
    let read = CatalogSeed { at: &at }
        .deserialize(&mut de)
        .and_then(|c| de.end().map(|()| c));
    read.map_err(|e| match at.borrow().describe() {
        Some(stream) => format!("{stream}: {e}"),
        None => e.to_string(),
    })
}

/// The stream being read, for error messages.
#[derive(Debug, Default)]
struct Position {
    index: Option<usize>,
    id: Option<String>,
}

impl Position {
    fn describe(&self) -> Option<String> {
        let index = self.index?;
        Some(match &self.id {
            Some(id) => format!("stream '{id}' (streams[{index}])"),
            None => format!("streams[{index}]"),
        })
    }
}

impl<'de> Deserialize<'de> for Catalog {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        CatalogSeed {
            at: &RefCell::default(),
        }
        .deserialize(d)
    }
}

impl<'de> Deserialize<'de> for CatalogStream {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        StreamSeed {
            at: &RefCell::default(),
            index: 0,
        }
        .deserialize(d)
    }
}

/// The whole document: `{"streams": [...]}`, other keys ignored.
struct CatalogSeed<'a> {
    at: &'a RefCell<Position>,
}

impl<'de> DeserializeSeed<'de> for CatalogSeed<'_> {
    type Value = Catalog;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Catalog, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for CatalogSeed<'_> {
    type Value = Catalog;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Singer catalog (an object with \"streams\")")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Catalog, A::Error> {
        let mut catalog = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "streams" {
                catalog = Some(map.next_value_seed(StreamsSeed { at: self.at })?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        catalog.ok_or_else(|| de::Error::missing_field("streams"))
    }
}

/// The `streams` array: each stream converted as it is parsed, the unselected ones dropped.
struct StreamsSeed<'a> {
    at: &'a RefCell<Position>,
}

impl<'de> DeserializeSeed<'de> for StreamsSeed<'_> {
    type Value = Catalog;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Catalog, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for StreamsSeed<'_> {
    type Value = Catalog;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of streams")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Catalog, A::Error> {
        let mut catalog = Catalog::default();
        let seed = |index| StreamSeed { at: self.at, index };
        while let Some(s) = seq.next_element_seed(seed(catalog.listed))? {
            catalog.listed += 1;
            if s.selected {
                catalog.streams.push(s);
            }
        }
        Ok(catalog)
    }
}

/// One stream object.
struct StreamSeed<'a> {
    at: &'a RefCell<Position>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for StreamSeed<'_> {
    type Value = CatalogStream;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CatalogStream, D::Error> {
        *self.at.borrow_mut() = Position {
            index: Some(self.index),
            id: None,
        };
        let stream = d.deserialize_map(StreamVisitor { at: self.at })?;
        *self.at.borrow_mut() = Position::default();
        Ok(stream)
    }
}

struct StreamVisitor<'a> {
    at: &'a RefCell<Position>,
}

/// A stream's keys as parsed, before conversion.
#[derive(Default)]
struct RawStream {
    id: Option<String>,
    table_name: Option<String>,
    schema: Option<Value>,
    metadata: Vec<RawEntry>,
    legacy_selected: Option<bool>,
    legacy_method: Option<String>,
    legacy_key: Option<String>,
}

impl<'de> Visitor<'de> for StreamVisitor<'_> {
    type Value = CatalogStream;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a catalog stream (an object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CatalogStream, A::Error> {
        let mut raw = RawStream::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "tap_stream_id" => {
                    let id: String = map.next_value()?;
                    self.at.borrow_mut().id = Some(id.clone());
                    raw.id = Some(id);
                }
                "table_name" => raw.table_name = map.next_value()?,
                "schema" => raw.schema = Some(map.next_value()?),
                "metadata" => raw.metadata = map.next_value()?,
                "selected" => raw.legacy_selected = map.next_value::<Value>()?.as_bool(),
                "replication_method" => raw.legacy_method = as_string(map.next_value()?),
                "replication_key" => raw.legacy_key = as_string(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let id = raw
            .id
            .take()
            .ok_or_else(|| de::Error::missing_field("tap_stream_id"))?;
        let schema = raw
            .schema
            .take()
            .ok_or_else(|| de::Error::missing_field("schema"))?;
        Ok(convert(id, &schema, raw))
    }
}

/// One metadata entry, with the keys selection and planning read.
#[derive(Deserialize)]
struct RawEntry {
    breadcrumb: Vec<String>,
    metadata: RawMetadata,
}

/// Known metadata keys; `Some(Value::Null)` for a key present as `null`.
#[derive(Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
struct RawMetadata {
    #[serde(default, deserialize_with = "present")]
    selected: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    selected_by_default: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    replication_method: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    replication_key: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    database_name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    table_key_properties: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    inclusion: Option<Value>,
}

/// A key that is present, whatever its value (`null` included).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

fn as_string(v: Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s),
        _ => None,
    }
}

fn flag(v: Option<&Value>) -> Flag {
    match v {
        None => Flag::Absent,
        Some(Value::Bool(b)) => Flag::Bool(*b),
        Some(_) => Flag::Other,
    }
}

/// The compact stream; an unselected one keeps only its ids.
fn convert(id: String, schema: &Value, raw: RawStream) -> CatalogStream {
    let md = raw
        .metadata
        .iter()
        .find(|e| e.breadcrumb.is_empty())
        .map(|e| &e.metadata);
    let md_bool = |v: Option<&Value>| v.and_then(Value::as_bool);
    let selected = md_bool(md.and_then(|m| m.selected.as_ref()))
        .or(raw.legacy_selected)
        .or_else(|| md_bool(schema.get("selected")))
        .or_else(|| md_bool(md.and_then(|m| m.selected_by_default.as_ref())))
        .unwrap_or(false);
    if !selected {
        return CatalogStream {
            tap_stream_id: id,
            table_name: raw.table_name,
            ..CatalogStream::default()
        };
    }
    // A metadata key that is present wins over the legacy key, whatever its type.
    let md_or_legacy = |v: Option<&Value>, legacy: Option<String>| match v {
        Some(v) => v.as_str().map(str::to_string),
        None => legacy,
    };
    let replication_method = md_or_legacy(
        md.and_then(|m| m.replication_method.as_ref()),
        raw.legacy_method,
    );
    let replication_key = md_or_legacy(md.and_then(|m| m.replication_key.as_ref()), raw.legacy_key);
    let log_based = replication_method
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("LOG_BASED"));
    let properties = schema.get("properties").and_then(Value::as_object);
    CatalogStream {
        tap_stream_id: id,
        table_name: raw.table_name,
        selected,
        replication_method,
        replication_key,
        database_name: md
            .and_then(|m| m.database_name.as_ref())
            .and_then(Value::as_str)
            .map(str::to_string),
        key_properties: md
            .and_then(|m| m.table_key_properties.as_ref())
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            }),
        columns: columns(properties, &raw.metadata),
        schema_text: log_based
            .then(|| serde_json::to_string(schema).ok())
            .flatten()
            .map(String::into_boxed_str),
    }
}

/// The schema's properties in order, then the columns only field metadata names.
fn columns(
    properties: Option<&serde_json::Map<String, Value>>,
    metadata: &[RawEntry],
) -> Vec<CatalogColumn> {
    let mut columns: Vec<CatalogColumn> = properties
        .into_iter()
        .flatten()
        .map(|(name, p)| CatalogColumn {
            name: name.as_str().into(),
            in_schema: true,
            schema_selected: p.get("selected").and_then(Value::as_bool).unwrap_or(true),
            metadata: None,
        })
        .collect();
    let mut index: HashMap<&str, usize> = properties
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(i, (name, _))| (name.as_str(), i))
        .collect();
    for e in metadata {
        let [p, name] = &e.breadcrumb[..] else {
            continue;
        };
        if p != "properties" {
            continue;
        }
        let i = *index.entry(name.as_str()).or_insert_with(|| {
            columns.push(CatalogColumn {
                name: name.as_str().into(),
                in_schema: false,
                schema_selected: true,
                metadata: None,
            });
            columns.len() - 1
        });
        // The first entry at a breadcrumb wins.
        columns[i]
            .metadata
            .get_or_insert_with(|| field_metadata(&e.metadata));
    }
    columns.shrink_to_fit();
    columns
}

fn field_metadata(m: &RawMetadata) -> FieldMetadata {
    FieldMetadata {
        inclusion: match m.inclusion.as_ref().and_then(Value::as_str) {
            Some("automatic") => Inclusion::Automatic,
            Some("unsupported") => Inclusion::Unsupported,
            _ => Inclusion::Available,
        },
        selected: flag(m.selected.as_ref()),
        selected_by_default: flag(m.selected_by_default.as_ref()),
    }
}

#[cfg(test)]
mod tests;
