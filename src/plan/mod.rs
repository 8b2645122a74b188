//! Planning: which streams, which columns, which method, from the catalog and the live tables.
//!
//! Selection follows the Singer SDK rules: a field with `inclusion: unsupported` never,
//! `automatic` always, else its `selected`, else `selected-by-default`, else the stream's
//! selection. A stream is selected by its `selected`, else the legacy `"selected"` on the
//! stream or its schema, else `selected-by-default` (decided as the catalog is read,
//! `catalog::read`). Column types always come from the live table (so values and SCHEMA agree),
//! never from the catalog's JSON Schema.

use std::collections::HashMap;

use serde_json::{json, Map, Value};

use crate::catalog::discover::TableInfo;
use crate::catalog::model::{Flag, Inclusion};
use crate::catalog::types::ColumnKind;
use crate::catalog::{Catalog, CatalogStream};
use crate::config::TypeOptions;
use crate::encode::{ColumnWarnings, Encoder};
use crate::error::{Error, Result};
use crate::singer::messages::SchemaJson;
use crate::source::query::quote_ident;

/// Replication method of a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    /// Whole table every run, resumable by key, with table versions.
    FullTable,
    /// Rows at or past the replication-key bookmark.
    Incremental,
    /// Binlog change data capture.
    LogBased,
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Method::FullTable => "FULL_TABLE",
            Method::Incremental => "INCREMENTAL",
            Method::LogBased => "LOG_BASED",
        })
    }
}

impl Method {
    fn parse(s: &str) -> Option<Method> {
        match s.to_ascii_uppercase().as_str() {
            "FULL_TABLE" => Some(Method::FullTable),
            "INCREMENTAL" => Some(Method::Incremental),
            "LOG_BASED" => Some(Method::LogBased),
            _ => None,
        }
    }
}

/// A column to read.
#[derive(Clone, Debug)]
pub(crate) struct PlannedColumn {
    /// Column name.
    pub name: String,
    /// What it holds.
    pub kind: ColumnKind,
    /// How its bytes become JSON.
    pub encoder: Encoder,
    /// The SELECT expression (quoted; spatial columns read as GeoJSON).
    pub select_expr: String,
}

/// Everything needed to sync one stream.
#[derive(Clone, Debug)]
pub(crate) struct StreamPlan {
    /// `<db>-<table>`.
    pub stream_id: String,
    /// Database.
    pub database: String,
    /// Table.
    pub table: String,
    /// Selected columns in table order.
    pub columns: Vec<PlannedColumn>,
    /// `key_properties` of the SCHEMA message.
    pub key_properties: Vec<String>,
    /// Indexes (into `columns`) of the unique, orderable key used to resume FULL_TABLE; empty
    /// when the table cannot be resumed (no key, or a key whose SQL order differs from its text).
    pub resume_key: Vec<usize>,
    /// The index behind the resume key (for range estimates).
    pub key_index: Option<String>,
    /// Method.
    pub method: Method,
    /// Index (into `columns`) of the replication key, for INCREMENTAL.
    pub replication_key: Option<usize>,
    /// JSON Schema of the SCHEMA message.
    pub schema: SchemaJson,
    /// Optimizer row estimate, for progress.
    pub row_estimate: Option<u64>,
}

impl StreamPlan {
    /// A FULL_TABLE plan of `db`.`id` keyed by its first column, for unit tests.
    #[cfg(test)]
    pub(crate) fn for_test(id: &str, columns: Vec<PlannedColumn>, rows: Option<u64>) -> StreamPlan {
        StreamPlan {
            stream_id: format!("db-{id}"),
            database: "db".into(),
            table: id.into(),
            key_properties: vec![columns[0].name.clone()],
            columns,
            resume_key: vec![0],
            key_index: None,
            method: Method::FullTable,
            replication_key: None,
            schema: crate::singer::messages::SchemaJson::from_value(&serde_json::json!({})),
            row_estimate: rows,
        }
    }

    /// The replication key's column name.
    pub(crate) fn replication_key_name(&self) -> Option<&str> {
        self.replication_key.map(|i| self.columns[i].name.as_str())
    }
}

/// The streams to sync.
#[derive(Debug, Default)]
pub(crate) struct Plans {
    /// Streams whose tables exist.
    pub plans: Vec<StreamPlan>,
    /// Selected LOG_BASED streams whose table no longer exists (dropped or renamed in the
    /// binlog): the caller decides from their bookmarks whether that is an error.
    pub missing_log_based: Vec<String>,
}

/// Plans every stream of `catalog` that is selected, or every table when there is no catalog.
pub(crate) fn plan(
    catalog: Option<&Catalog>,
    tables: &[TableInfo],
    opts: &TypeOptions,
) -> Result<Plans> {
    let mut planner = Planner::new(catalog, opts)?;
    for t in tables {
        planner.table(t)?;
    }
    planner.finish()
}

/// Plans streams one table at a time, as discovery hands the tables over, so a sync never holds
/// every discovered table beside every plan.
pub(crate) struct Planner<'c> {
    catalog: Option<&'c Catalog>,
    opts: &'c TypeOptions,
    /// Each selected stream's method, in catalog order.
    methods: Vec<Method>,
    /// Selected streams (catalog indexes) by the table their database and table names name.
    by_names: HashMap<String, Vec<usize>>,
    /// Selected streams by `tap_stream_id`.
    by_id: HashMap<&'c str, Vec<usize>>,
    /// Plans by catalog index (every table, in order, without a catalog).
    planned: Vec<Option<StreamPlan>>,
    /// A table that matches a stream by `tap_stream_id` only, used when the table its names
    /// name never shows up.
    fallback: HashMap<usize, TableInfo>,
}

impl<'c> Planner<'c> {
    /// A planner of `catalog`'s selected streams (every table when None). An unknown
    /// replication-method is an error now.
    pub(crate) fn new(catalog: Option<&'c Catalog>, opts: &'c TypeOptions) -> Result<Self> {
        let mut planner = Planner {
            catalog,
            opts,
            methods: Vec::new(),
            by_names: HashMap::new(),
            by_id: HashMap::new(),
            planned: Vec::new(),
            fallback: HashMap::new(),
        };
        let Some(c) = catalog else {
            return Ok(planner);
        };
        planner.methods = vec![Method::FullTable; c.streams.len()];
        planner.planned.resize_with(c.streams.len(), || None);
        for (i, s) in c.streams.iter().enumerate().filter(|(_, s)| s.selected) {
            planner.methods[i] = stream_method(s)?;
            if let Some(id) = names_id(s) {
                planner.by_names.entry(id).or_default().push(i);
            }
            planner
                .by_id
                .entry(s.tap_stream_id.as_str())
                .or_default()
                .push(i);
        }
        Ok(planner)
    }

    /// Plans the stream(s) of one discovered table. Returns whether a LOG_BASED stream reads
    /// it (the binlog phase needs the table's columns; nothing else keeps it).
    pub(crate) fn table(&mut self, t: &TableInfo) -> Result<bool> {
        let Some(catalog) = self.catalog else {
            self.planned.push(Some(whole_table(t, self.opts)?));
            return Ok(false);
        };
        let id = t.stream_id();
        let mut log_based = false;
        let named = self.by_names.get(&id).cloned().unwrap_or_default();
        let by_id = self.by_id.get(id.as_str()).cloned().unwrap_or_default();
        for i in by_id.iter().copied().filter(|i| !named.contains(i)) {
            if names_id(&catalog.streams[i]).is_some() {
                // Its names may name another table, found later: this one only if not.
                if self.planned[i].is_none() {
                    self.fallback.insert(i, t.clone());
                    log_based |= self.methods[i] == Method::LogBased;
                }
            } else {
                log_based |= self.plan_at(i, t)?;
            }
        }
        for i in named {
            self.fallback.remove(&i);
            log_based |= self.plan_at(i, t)?;
        }
        Ok(log_based)
    }

    fn plan_at(&mut self, i: usize, t: &TableInfo) -> Result<bool> {
        let Some(catalog) = self.catalog else {
            return Ok(false);
        };
        let method = self.methods[i];
        if self.planned[i].is_none() {
            self.planned[i] = Some(plan_stream(&catalog.streams[i], t, method, self.opts)?);
        }
        Ok(method == Method::LogBased)
    }

    /// The plans, in catalog order (table order without a catalog). A selected stream whose
    /// table was not found is an error, or, for LOG_BASED, in `missing_log_based`.
    pub(crate) fn finish(mut self) -> Result<Plans> {
        let Some(catalog) = self.catalog else {
            return Ok(Plans {
                plans: self.planned.into_iter().flatten().collect(),
                missing_log_based: Vec::new(),
            });
        };
        let mut plans = Plans::default();
        let mut defaulted = Vec::new();
        for (i, s) in catalog
            .streams
            .iter()
            .enumerate()
            .filter(|(_, s)| s.selected)
        {
            let id = &s.tap_stream_id;
            if s.replication_method.is_none() {
                defaulted.push(id.as_str());
            }
            if self.planned[i].is_none() {
                if let Some(t) = self.fallback.remove(&i) {
                    self.plan_at(i, &t)?;
                }
            }
            match self.planned[i].take() {
                Some(p) => plans.plans.push(p),
                None if self.methods[i] == Method::LogBased => {
                    plans.missing_log_based.push(id.clone())
                }
                None => {
                    return Err(Error::usage(format!(
                        "stream '{id}' is selected in the catalog but its table does not exist on the server (run --discover again)"
                    )))
                }
            }
        }
        log_defaulted(&defaulted);
        Ok(plans)
    }
}

/// The table a stream's database and table names name, as a stream id.
fn names_id(s: &CatalogStream) -> Option<String> {
    Some(crate::catalog::discover::stream_id(
        s.database_name.as_deref()?,
        s.table_name.as_deref()?,
    ))
}

/// Says which streams have no replication-method (FULL_TABLE then): a line each for a few,
/// else one line (and a line each at `debug`).
fn log_defaulted(ids: &[&str]) {
    const FEW: usize = 10;
    if ids.len() <= FEW {
        for id in ids {
            log::info!("stream '{id}': no replication-method in the catalog, using FULL_TABLE");
        }
        return;
    }
    log::info!(
        "{} streams have no replication-method in the catalog, using FULL_TABLE ('{}', '{}', ...)",
        ids.len(),
        ids[0],
        ids[1]
    );
    for id in ids {
        log::debug!("stream '{id}': no replication-method in the catalog, using FULL_TABLE");
    }
}

/// Without a catalog: every supported column of the table, FULL_TABLE.
fn whole_table(t: &TableInfo, opts: &TypeOptions) -> Result<StreamPlan> {
    let cols: Vec<&str> = t
        .columns
        .iter()
        .filter(|c| c.kind != ColumnKind::Unsupported)
        .map(|c| c.name.as_str())
        .collect();
    build(t, &cols, t.key.clone(), Method::FullTable, None, opts)
}

/// The stream's replication method (metadata, then the legacy top-level key; FULL_TABLE when
/// neither says).
fn stream_method(s: &CatalogStream) -> Result<Method> {
    let id = &s.tap_stream_id;
    match s.replication_method.as_deref() {
        Some(m) => Method::parse(m).ok_or_else(|| {
            Error::usage(format!(
                "stream '{id}': unknown replication-method '{m}' (use FULL_TABLE, INCREMENTAL or LOG_BASED)"
            ))
        }),
        None => Ok(Method::FullTable),
    }
}

/// Plans one selected stream whose table exists.
fn plan_stream(
    s: &CatalogStream,
    table: &TableInfo,
    method: Method,
    opts: &TypeOptions,
) -> Result<StreamPlan> {
    let id = &s.tap_stream_id;
    if method == Method::LogBased && table.is_view {
        return Err(Error::usage(format!(
            "stream '{id}' is a view: LOG_BASED cannot follow a view (the binary log holds the changes of its base tables, not of the view), so it would never see a change. Use FULL_TABLE (or INCREMENTAL with a replication-key) for the view, or LOG_BASED on its base tables"
        )));
    }
    let replication_key = s.replication_key.as_deref().filter(|k| !k.is_empty());
    let key_properties = s
        .key_properties
        .clone()
        .unwrap_or_else(|| table.key.clone());
    check_catalog_columns(s, table, method)?;
    let selected = selected_columns(s, table, method, &key_properties, replication_key);
    for k in &key_properties {
        if !table.columns.iter().any(|c| &c.name == k) {
            return Err(Error::usage(format!(
                "stream '{id}': key property '{k}' is not a column of the table"
            )));
        }
    }
    let rk = if method == Method::Incremental {
        let Some(rk) = replication_key else {
            return Err(Error::usage(format!(
                "stream '{id}': INCREMENTAL needs a replication-key in the stream metadata"
            )));
        };
        check_replication_key(id, table, rk)?;
        Some(rk)
    } else {
        None
    };
    build(table, &selected, key_properties, method, rk, opts)
}

/// Every catalog property must still be a column (LOG_BASED tolerates dropped columns: schema
/// changes flow through the binlog).
fn check_catalog_columns(s: &CatalogStream, table: &TableInfo, method: Method) -> Result<()> {
    let id = &s.tap_stream_id;
    for name in s.property_names() {
        if table.columns.iter().any(|c| c.name == name) || name.starts_with("_sdc_") {
            continue;
        }
        if method == Method::LogBased {
            log::warn!("stream '{id}': column '{name}' is no longer in the table; it is not read");
            continue;
        }
        return Err(Error::usage(format!(
            "stream '{id}': column '{name}' is in the catalog but not in the table (run --discover again)"
        )));
    }
    Ok(())
}

/// The columns to read: automatic ones (keys, the replication key), then those the metadata
/// selects; unsupported columns never.
fn selected_columns<'t>(
    s: &CatalogStream,
    table: &'t TableInfo,
    method: Method,
    key_properties: &[String],
    replication_key: Option<&str>,
) -> Vec<&'t str> {
    let mut selected: Vec<&str> = Vec::new();
    let mut not_in_catalog: Vec<&str> = Vec::new();
    let mut all_chosen = true;
    for c in &table.columns {
        if c.kind == ColumnKind::Unsupported {
            continue;
        }
        let in_catalog = s.in_schema(&c.name);
        let automatic =
            key_properties.contains(&c.name) || replication_key == Some(c.name.as_str());
        if automatic || column_chosen(s, &c.name, in_catalog) {
            selected.push(c.name.as_str());
        } else if !in_catalog {
            not_in_catalog.push(c.name.as_str());
        } else {
            all_chosen = false;
        }
    }
    // LOG_BASED follows columns added since discovery (as the binlog reader does within a
    // run) when the stream selects every column it knows.
    if method == Method::LogBased && all_chosen && !not_in_catalog.is_empty() {
        log::info!(
            "stream '{}': selecting column(s) added since discovery: {}",
            s.tap_stream_id,
            not_in_catalog.join(", ")
        );
        selected.extend(not_in_catalog);
    }
    selected
}

/// Whether the catalog selects a column that is not automatic.
fn column_chosen(s: &CatalogStream, name: &str, in_catalog: bool) -> bool {
    let Some(c) = s.column(name) else {
        return false;
    };
    match c.metadata {
        Some(m) => match m.inclusion {
            Inclusion::Automatic => true,
            Inclusion::Unsupported => false,
            // A `selected` of another type hides `selected-by-default`.
            Inclusion::Available => match (m.selected, m.selected_by_default) {
                (Flag::Bool(b), _) | (Flag::Absent, Flag::Bool(b)) => b,
                _ => in_catalog,
            },
        },
        None => in_catalog && c.schema_selected,
    }
}

/// An INCREMENTAL replication key must be a column whose values compare reliably.
fn check_replication_key(id: &str, table: &TableInfo, rk: &str) -> Result<()> {
    let col = table.columns.iter().find(|c| c.name == rk).ok_or_else(|| {
        Error::usage(format!(
            "stream '{id}': replication-key '{rk}' is not a column of the table"
        ))
    })?;
    if !col.kind.is_replication_key_candidate() {
        return Err(Error::usage(format!(
            "stream '{id}': replication-key '{rk}' has type {} which cannot be compared reliably",
            col.column_type
        )));
    }
    Ok(())
}

/// Rebuilds a LOG_BASED stream's plan for its table's new columns (after a schema change).
pub(crate) fn rebuild(
    table: &TableInfo,
    selected: &[&str],
    key_properties: Vec<String>,
    opts: &TypeOptions,
) -> Result<StreamPlan> {
    build(
        table,
        selected,
        key_properties,
        Method::LogBased,
        None,
        opts,
    )
}

fn build(
    t: &TableInfo,
    selected: &[&str],
    key_properties: Vec<String>,
    method: Method,
    replication_key: Option<&str>,
    opts: &TypeOptions,
) -> Result<StreamPlan> {
    let mut columns = Vec::new();
    let mut properties = Map::new();
    for c in t
        .columns
        .iter()
        .filter(|c| selected.contains(&c.name.as_str()))
    {
        let Some(encoder) = Encoder::for_kind(&c.kind, opts) else {
            continue;
        };
        let q = quote_ident(&c.name);
        let select_expr = match c.kind {
            ColumnKind::Spatial => format!("ST_AsGeoJSON({q}) AS {q}"),
            // The exact value: MariaDB prints FLOAT with 6 significant digits only.
            ColumnKind::Float => format!("({q} + 0E0) AS {q}"),
            _ => q,
        };
        properties.insert(c.name.clone(), c.kind.json_schema(c.nullable, opts));
        columns.push(PlannedColumn {
            name: c.name.clone(),
            kind: c.kind.clone(),
            encoder,
            select_expr,
        });
    }
    columns.shrink_to_fit(); // every stream's plan lives for the whole run
    let index_of = |name: &str| columns.iter().position(|c| c.name == name);
    // Resume only by the table's own unique key, and only when SQL order matches text order.
    let resume_key: Vec<usize> = t.key.iter().filter_map(|k| index_of(k)).collect();
    let resumable = !t.key.is_empty()
        && resume_key.len() == t.key.len()
        && resume_key.iter().all(|&i| resumable_kind(&columns[i].kind));
    Ok(StreamPlan {
        stream_id: t.stream_id(),
        database: t.database.clone(),
        table: t.name.clone(),
        replication_key: replication_key.and_then(index_of),
        resume_key: if resumable { resume_key } else { vec![] },
        key_properties,
        key_index: t.key_index.clone(),
        method,
        schema: {
            if method == Method::LogBased {
                // Deletes arrive as records with this set: present from the first SCHEMA on.
                properties.insert(
                    "_sdc_deleted_at".into(),
                    json!({"type": ["null", "string"], "format": "date-time"}),
                );
            }
            let properties = Value::Object(properties);
            SchemaJson::from_json_text(format!(r#"{{"type":"object","properties":{properties}}}"#))
        },
        row_estimate: t.row_count,
        columns,
    })
}

fn resumable_kind(k: &ColumnKind) -> bool {
    matches!(
        k,
        ColumnKind::Integer { .. }
            | ColumnKind::Boolean
            | ColumnKind::Year
            | ColumnKind::Decimal { .. }
            | ColumnKind::Date
            | ColumnKind::DateTime { .. }
            | ColumnKind::Timestamp { .. }
            | ColumnKind::Time { .. }
            | ColumnKind::Text { .. }
            | ColumnKind::Binary
            | ColumnKind::Uuid
    )
}

impl StreamPlan {
    /// Text that is not valid UTF-8 cannot be written to JSON without loss: the run stops before
    /// the data holding it is sent (the server converts every character set to utf8mb4, so this
    /// only happens with corrupt data).
    pub(crate) fn check_text(&self, warnings: &[ColumnWarnings]) -> Result<()> {
        let plan = self;
        match plan.columns.iter().zip(warnings).find(|(_, w)| w.invalid_utf8 > 0) {
            None => Ok(()),
            Some((c, _)) => Err(Error::runtime(format!(
                "stream '{}' column '{}' holds bytes that are not valid text in its character set; nothing of it was written. Fix the data, or deselect the column",
                plan.stream_id, c.name
            ))),
        }
    }

    /// Logs one warning per column whose values were changed or refused on the way out.
    pub(crate) fn report_warnings(&self, warnings: &[ColumnWarnings]) {
        let plan = self;
        for (c, w) in plan.columns.iter().zip(warnings) {
            if w.any() {
                log::warn!(
                    "stream '{}' column '{}': {}",
                    plan.stream_id,
                    c.name,
                    w.describe()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
