//! A model Singer target: replays messages the way a target that upserts by key, deletes on
//! `_sdc_deleted_at` and honours ACTIVATE_VERSION would, so tests can compare what a pipeline
//! ends with against the source.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

/// Rows of one stream by key (the JSON text of the key values), with their table version.
#[derive(Default, Debug)]
pub struct Table {
    key_properties: Vec<String>,
    rows: BTreeMap<String, (Option<u64>, Map<String, Value>)>,
}

/// Every stream's table.
#[derive(Default, Debug)]
pub struct Target {
    tables: BTreeMap<String, Table>,
    /// ACTIVATE_VERSION messages seen, per stream.
    pub activations: BTreeMap<String, Vec<u64>>,
}

impl Target {
    /// Applies messages in order (a killed run's complete lines included).
    pub fn apply(&mut self, messages: &[Value]) {
        for m in messages {
            let stream = m["stream"].as_str().unwrap_or_default().to_string();
            match m["type"].as_str() {
                Some("SCHEMA") => {
                    let t = self.tables.entry(stream).or_default();
                    t.key_properties = m["key_properties"]
                        .as_array()
                        .expect("key_properties")
                        .iter()
                        .map(|k| k.as_str().expect("key name").to_string())
                        .collect();
                }
                Some("RECORD") => {
                    let t = self
                        .tables
                        .get_mut(&stream)
                        .expect("RECORD after its SCHEMA");
                    let record = m["record"].as_object().expect("record").clone();
                    assert!(!t.key_properties.is_empty(), "{stream}: no key properties");
                    let key = key_of(&t.key_properties, &record);
                    if record.get("_sdc_deleted_at").is_some_and(|d| !d.is_null()) {
                        t.rows.remove(&key);
                    } else {
                        t.rows.insert(key, (m["version"].as_u64(), record));
                    }
                }
                Some("ACTIVATE_VERSION") => {
                    let v = m["version"].as_u64().expect("version");
                    self.activations.entry(stream.clone()).or_default().push(v);
                    if let Some(t) = self.tables.get_mut(&stream) {
                        t.rows.retain(|_, (rv, _)| rv.is_some_and(|rv| rv >= v));
                    }
                }
                _ => {}
            }
        }
    }

    /// The rows of a stream as key -> record (without `_sdc_*` columns, absent columns as null
    /// when `columns` lists them).
    pub fn rows(&self, stream: &str, columns: &[String]) -> BTreeMap<String, Map<String, Value>> {
        let Some(t) = self.tables.get(stream) else {
            return BTreeMap::new();
        };
        t.rows
            .iter()
            .map(|(k, (_, r))| (k.clone(), normalize(r, columns)))
            .collect()
    }

    /// The versions of a stream's rows.
    pub fn versions(&self, stream: &str) -> Vec<Option<u64>> {
        self.tables
            .get(stream)
            .map(|t| t.rows.values().map(|(v, _)| *v).collect())
            .unwrap_or_default()
    }
}

/// The key of a record: the JSON text of its key values in key order.
pub fn key_of(key_properties: &[String], record: &Map<String, Value>) -> String {
    let values: Vec<&Value> = key_properties
        .iter()
        .map(|k| record.get(k).expect("key property in the record"))
        .collect();
    serde_json::to_string(&values).expect("key JSON")
}

/// A record with only `columns` (every one present, null when absent), no `_sdc_*` columns.
pub fn normalize(record: &Map<String, Value>, columns: &[String]) -> Map<String, Value> {
    columns
        .iter()
        .map(|c| (c.clone(), record.get(c).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// What a fresh FULL_TABLE read of `tables` (all columns) gives now: per stream, its columns
/// and its rows by key. The model target must end with exactly this.
pub fn fresh_read(db: &str, tables: &[&str]) -> BTreeMap<String, (Vec<String>, Target)> {
    use crate::support::*;
    let mut cfg = base_config();
    cfg["filter_dbs"] = serde_json::json!(db);
    let mut catalog = discover(&cfg);
    let ids: Vec<String> = tables.iter().map(|t| format!("{db}-{t}")).collect();
    only_streams(
        &mut catalog,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    select_all(&mut catalog, &[]);
    let run = sync(&cfg, Some(&catalog), None);
    let mut out = BTreeMap::new();
    for id in ids {
        let schema = run
            .messages
            .iter()
            .find(|m| m["type"] == "SCHEMA" && m["stream"] == id.as_str())
            .unwrap_or_else(|| panic!("no SCHEMA for {id}"));
        let columns: Vec<String> = schema["schema"]["properties"]
            .as_object()
            .expect("properties")
            .keys()
            .filter(|k| !k.starts_with("_sdc_"))
            .cloned()
            .collect();
        let mut t = Target::default();
        t.apply(
            &run.messages
                .iter()
                .filter(|m| m["stream"] == id.as_str())
                .cloned()
                .collect::<Vec<_>>(),
        );
        out.insert(id, (columns, t));
    }
    out
}

/// Asserts that the model target holds exactly the source's rows for `tables`: no missing row,
/// no stale row, no differing value.
pub fn assert_matches_source(target: &Target, db: &str, tables: &[&str], context: &str) {
    for (id, (columns, fresh)) in fresh_read(db, tables) {
        let want = fresh.rows(&id, &columns);
        let got = target.rows(&id, &columns);
        let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
        let stale: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
        let differing: Vec<_> = want
            .iter()
            .filter_map(|(k, w)| got.get(k).filter(|g| *g != w).map(|g| (k, g, w)))
            .collect();
        assert!(
            missing.is_empty() && stale.is_empty() && differing.is_empty(),
            "{context}: stream {id}: {} missing {:?}, {} stale {:?}, {} differing (target, source) {:?}",
            missing.len(),
            missing.iter().take(5).collect::<Vec<_>>(),
            stale.len(),
            stale.iter().take(5).collect::<Vec<_>>(),
            differing.len(),
            differing.iter().take(3).collect::<Vec<_>>()
        );
    }
}
