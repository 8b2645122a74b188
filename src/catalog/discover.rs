//! Discovery: every table, view and column of the selected databases, in one pass.
//!
//! Promises:
//! - A fixed number of `information_schema` queries (tables, columns, unique indexes, and on
//!   MariaDB the `json_valid` checks), whatever the number of tables: thousands of tables
//!   discover in seconds.
//! - System schemas are excluded unless named explicitly in `filter_dbs`.
//! - Key properties: the primary key; else the unique key over NOT NULL, non-prefix columns
//!   with the fewest columns (ties broken by index name); else none.
//! - Output order is stable: streams by (database, table), columns by ordinal position.

use std::collections::{BTreeMap, HashMap, HashSet};

use mysql::prelude::{FromValue, Queryable};
use mysql::{Conn, Row};
use serde_json::{json, Map, Value};

use super::model::{Catalog, CatalogStream, MetadataEntry};
use super::types::{ColumnKind, RawColumnType};
use crate::config::{Flavor, TypeOptions};
use crate::error::{Error, MysqlContext, Result};
use crate::source::query::quote_str;

/// Schemas that hold the server's own data.
pub(crate) const SYSTEM_SCHEMAS: [&str; 4] =
    ["information_schema", "performance_schema", "mysql", "sys"];

/// Unique indexes of one table: name -> (columns in order, usable as a key).
type UniqueIndexes = BTreeMap<String, (Vec<String>, bool)>;

/// A discovered column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ColumnInfo {
    /// Column name.
    pub name: String,
    /// `COLUMN_TYPE`, e.g. `decimal(12,2) unsigned`.
    pub column_type: String,
    /// NULL allowed.
    pub nullable: bool,
    /// Character set of text columns.
    pub charset: Option<String>,
    /// What it holds.
    pub kind: ColumnKind,
}

/// A discovered table or view.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TableInfo {
    /// Database (schema) name.
    pub database: String,
    /// Table name.
    pub name: String,
    /// A view rather than a base table.
    pub is_view: bool,
    /// Optimizer estimate of rows (None for views).
    pub row_count: Option<u64>,
    /// Columns by ordinal position.
    pub columns: Vec<ColumnInfo>,
    /// Key properties (primary key or chosen unique key), possibly empty.
    pub key: Vec<String>,
    /// The index behind `key` (`PRIMARY` or the unique index name).
    pub key_index: Option<String>,
}

impl TableInfo {
    /// The Singer stream id, `<database>-<table>`.
    pub(crate) fn stream_id(&self) -> String {
        stream_id(&self.database, &self.name)
    }
}

/// The Singer stream id for a table.
pub(crate) fn stream_id(database: &str, table: &str) -> String {
    format!("{database}-{table}")
}

/// Discovered tables by (database, table).
type Tables = BTreeMap<(String, String), TableInfo>;

/// Reads every table and column of `databases` (all non-system ones when empty).
pub(crate) fn discover_tables(
    conn: &mut Conn,
    flavor: Flavor,
    databases: &[String],
    opts: &TypeOptions,
) -> Result<Vec<TableInfo>> {
    let mut tables = read_tables(conn, databases)?;
    report_found(databases, &tables);
    let json_columns = if flavor == Flavor::Mariadb {
        mariadb_json_columns(conn, databases)?
    } else {
        HashSet::new()
    };
    read_columns(conn, databases, &mut tables, &json_columns, opts)?;
    read_keys(conn, databases, &mut tables)?;
    Ok(tables.into_values().collect())
}

/// The `WHERE` condition on a schema column: the asked databases, or every non-system one.
fn schema_filter(databases: &[String], col: &str) -> String {
    let (op, names): (&str, Vec<String>) = if databases.is_empty() {
        (
            "NOT IN",
            SYSTEM_SCHEMAS.iter().map(|s| quote_str(s)).collect(),
        )
    } else {
        ("IN", databases.iter().map(|s| quote_str(s)).collect())
    };
    format!("{col} {op} ({})", names.join(", "))
}

/// Tables and views, without their columns.
fn read_tables(conn: &mut Conn, databases: &[String]) -> Result<Tables> {
    let mut tables: BTreeMap<(String, String), TableInfo> = BTreeMap::new();
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES \
         WHERE {} AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')",
        schema_filter(databases, "TABLE_SCHEMA")
    );
    for row in query(conn, &sql, "tables")? {
        let mut row = row;
        let database: String = take(&mut row, 0, "TABLES.TABLE_SCHEMA")?;
        let name: String = take(&mut row, 1, "TABLES.TABLE_NAME")?;
        let table_type: String = take(&mut row, 2, "TABLES.TABLE_TYPE")?;
        let rows: Option<u64> = take(&mut row, 3, "TABLES.TABLE_ROWS")?;
        let is_view = table_type == "VIEW";
        tables.insert(
            (database.clone(), name.clone()),
            TableInfo {
                database,
                name,
                is_view,
                row_count: if is_view {
                    None
                } else {
                    Some(rows.unwrap_or(0))
                },
                columns: vec![],
                key: vec![],
                key_index: None,
            },
        );
    }
    Ok(tables)
}

/// Logs what was found; a database asked for that has no tables is a warning.
fn report_found(databases: &[String], tables: &Tables) {
    if databases.is_empty() {
        log::info!("discovery: {} tables and views found", tables.len());
    } else {
        let found: HashSet<&str> = tables.keys().map(|(d, _)| d.as_str()).collect();
        for db in databases {
            if !found.contains(db.as_str()) {
                log::warn!("discovery: database '{db}' has no tables or does not exist");
            }
        }
    }
}

/// MariaDB JSON columns: longtext with `CHECK (json_valid(`col`))`.
fn mariadb_json_columns(
    conn: &mut Conn,
    databases: &[String],
) -> Result<HashSet<(String, String, String)>> {
    let mut json_columns: HashSet<(String, String, String)> = HashSet::new();
    let sql = format!(
        "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
         WHERE {} AND CHECK_CLAUSE LIKE 'json_valid(%'",
        schema_filter(databases, "CONSTRAINT_SCHEMA")
    );
    for row in query(conn, &sql, "check constraints")? {
        let mut row = row;
        let db: String = take(&mut row, 0, "CHECK_CONSTRAINTS.CONSTRAINT_SCHEMA")?;
        let table: String = take(&mut row, 1, "CHECK_CONSTRAINTS.TABLE_NAME")?;
        let clause: String = take(&mut row, 2, "CHECK_CONSTRAINTS.CHECK_CLAUSE")?;
        if let Some(col) = json_valid_column(&clause) {
            json_columns.insert((db, table, col));
        }
    }
    Ok(json_columns)
}

/// Columns in table order, with their kinds.
fn read_columns(
    conn: &mut Conn,
    databases: &[String],
    tables: &mut Tables,
    json_columns: &HashSet<(String, String, String)>,
    opts: &TypeOptions,
) -> Result<()> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
         CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, \
         CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE {} \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, ORDINAL_POSITION",
        schema_filter(databases, "TABLE_SCHEMA")
    );
    for row in query(conn, &sql, "columns")? {
        let mut row = row;
        let db: String = take(&mut row, 0, "COLUMNS.TABLE_SCHEMA")?;
        let table: String = take(&mut row, 1, "COLUMNS.TABLE_NAME")?;
        let name: String = take(&mut row, 2, "COLUMNS.COLUMN_NAME")?;
        let data_type: String = take(&mut row, 3, "COLUMNS.DATA_TYPE")?;
        let column_type: String = take(&mut row, 4, "COLUMNS.COLUMN_TYPE")?;
        let nullable: String = take(&mut row, 5, "COLUMNS.IS_NULLABLE")?;
        let max_chars: Option<u64> = take(&mut row, 6, "COLUMNS.CHARACTER_MAXIMUM_LENGTH")?;
        let precision: Option<u64> = take(&mut row, 7, "COLUMNS.NUMERIC_PRECISION")?;
        let scale: Option<u64> = take(&mut row, 8, "COLUMNS.NUMERIC_SCALE")?;
        let fsp: Option<u64> = take(&mut row, 9, "COLUMNS.DATETIME_PRECISION")?;
        let charset: Option<String> = take(&mut row, 10, "COLUMNS.CHARACTER_SET_NAME")?;
        let Some(t) = tables.get_mut(&(db.clone(), table.clone())) else {
            continue; // a table created or dropped between the two queries, or a sequence
        };
        let is_json = json_columns.contains(&(db, table, name.clone()));
        let raw = RawColumnType {
            data_type: &data_type,
            column_type: &column_type,
            max_chars,
            precision,
            scale,
            fsp,
            is_mariadb_json: is_json,
        };
        let kind = ColumnKind::from_information_schema(&raw, opts);
        t.columns.push(ColumnInfo {
            name,
            column_type,
            nullable: nullable == "YES",
            charset,
            kind,
        });
    }
    Ok(())
}

/// Keys: the primary key, else the narrowest unique index without NULLs or prefixes.
fn read_keys(conn: &mut Conn, databases: &[String], tables: &mut Tables) -> Result<()> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE, SUB_PART \
         FROM information_schema.STATISTICS WHERE {} AND NON_UNIQUE = 0 \
         ORDER BY TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX",
        schema_filter(databases, "TABLE_SCHEMA")
    );
    // (db, table) -> index name -> (columns, usable as a key)
    let mut indexes: HashMap<(String, String), UniqueIndexes> = HashMap::new();
    for row in query(conn, &sql, "indexes")? {
        let mut row = row;
        let db: String = take(&mut row, 0, "STATISTICS.TABLE_SCHEMA")?;
        let table: String = take(&mut row, 1, "STATISTICS.TABLE_NAME")?;
        let index: String = take(&mut row, 2, "STATISTICS.INDEX_NAME")?;
        let column: Option<String> = take(&mut row, 3, "STATISTICS.COLUMN_NAME")?;
        let nullable: Option<String> = take(&mut row, 4, "STATISTICS.NULLABLE")?;
        let sub_part: Option<u64> = take(&mut row, 5, "STATISTICS.SUB_PART")?;
        let entry = indexes
            .entry((db, table))
            .or_default()
            .entry(index)
            .or_insert_with(|| (vec![], true));
        let usable =
            column.is_some() && sub_part.is_none() && nullable.as_deref().unwrap_or("") != "YES";
        entry.1 &= usable;
        if let Some(c) = column {
            entry.0.push(c);
        }
    }
    for (k, idx) in indexes {
        let Some(t) = tables.get_mut(&k) else {
            continue;
        };
        let chosen = if let Some((cols, _)) = idx.get("PRIMARY") {
            Some(("PRIMARY".to_string(), cols.clone()))
        } else {
            idx.into_iter()
                .filter(|(_, (_, usable))| *usable)
                .min_by(|(an, (ac, _)), (bn, (bc, _))| ac.len().cmp(&bc.len()).then(an.cmp(bn)))
                .map(|(name, (cols, _))| (name, cols))
        };
        if let Some((name, cols)) = chosen {
            t.key = cols;
            t.key_index = Some(name);
        }
    }
    Ok(())
}

/// Builds the Singer catalog from discovered tables.
pub(crate) fn build_catalog(tables: &[TableInfo], opts: &TypeOptions) -> Catalog {
    let streams = tables.iter().map(|t| build_stream(t, opts)).collect();
    Catalog { streams }
}

fn build_stream(t: &TableInfo, opts: &TypeOptions) -> CatalogStream {
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
    let mut metadata = vec![MetadataEntry {
        breadcrumb: vec![],
        metadata: sm,
    }];
    metadata.extend(field_metadata);
    CatalogStream {
        tap_stream_id: id.clone(),
        table_name: Some(t.name.clone()),
        stream: id,
        schema: json!({"type": "object", "properties": properties}),
        metadata,
        extra: Map::new(),
    }
}

/// The column a MariaDB `json_valid(`col`)` check clause names, if that is all it says.
fn json_valid_column(clause: &str) -> Option<String> {
    let inner = clause
        .trim()
        .strip_prefix("json_valid(")?
        .strip_suffix(')')?;
    let quoted = inner.trim().strip_prefix('`')?.strip_suffix('`')?;
    // A lone backtick inside means the clause is more than a single identifier.
    let name = quoted.replace("``", "\u{0}");
    if name.contains('`') {
        return None;
    }
    Some(name.replace('\u{0}', "`"))
}

fn query(conn: &mut Conn, sql: &str, what: &str) -> Result<Vec<Row>> {
    conn.query(sql).context(format!(
        "discovery: cannot read {what} from information_schema"
    ))
}

fn take<T: FromValue>(row: &mut Row, idx: usize, what: &str) -> Result<T> {
    match row.take_opt::<T, usize>(idx) {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(Error::runtime(format!(
            "discovery: unexpected value in information_schema {what}: {e}"
        ))),
        None => Err(Error::runtime(format!(
            "discovery: information_schema {what} is missing"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_valid_clause() {
        assert_eq!(
            json_valid_column("json_valid(`doc`)").as_deref(),
            Some("doc")
        );
        assert_eq!(
            json_valid_column("json_valid(`a``b`)").as_deref(),
            Some("a`b")
        );
        assert_eq!(json_valid_column("json_valid(`a`) and `b` > 1"), None);
    }
}
