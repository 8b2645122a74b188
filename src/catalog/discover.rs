//! Discovery: every table, view and column of the selected databases, in one pass.
//!
//! Promises:
//! - A fixed number of `information_schema` queries (tables, columns, unique indexes, and on
//!   MariaDB the `json_valid` checks), whatever the number of tables: thousands of tables
//!   discover in seconds.
//! - System schemas are excluded unless named explicitly in `filter_dbs`.
//! - Key properties: the primary key; else the unique key over NOT NULL, non-prefix columns
//!   with the fewest columns (ties broken by index name); else none.
//! - Output order is stable: streams by (database, table) in byte order, columns by ordinal
//!   position.
//! - Bounded memory: the tables are listed (with their keys) first, then their columns are read
//!   as one ordered stream and each table is handed on as soon as its last column arrived.

use std::collections::{BTreeMap, HashSet};

use mysql::prelude::{FromValue, Queryable};
use mysql::{Conn, Row};

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

/// Reads every table and column of `databases` (all non-system ones when empty).
pub(crate) fn discover_tables(
    conn: &mut Conn,
    flavor: Flavor,
    databases: &[String],
    opts: &TypeOptions,
) -> Result<Vec<TableInfo>> {
    let mut tables = Vec::new();
    for_each_table(conn, flavor, databases, opts, |t| {
        tables.push(t);
        Ok(())
    })?;
    Ok(tables)
}

/// Hands every table and view of `databases` (all non-system ones when empty), with its
/// columns, to `each`, in (database, table) order, one at a time: the columns are read as a
/// stream, so only one table's columns are in memory at once. Returns the number of tables.
pub(crate) fn for_each_table(
    conn: &mut Conn,
    flavor: Flavor,
    databases: &[String],
    opts: &TypeOptions,
    each: impl FnMut(TableInfo) -> Result<()>,
) -> Result<usize> {
    let mut tables = read_tables(conn, databases)?;
    report_found(databases, &tables);
    if flavor == Flavor::Mariadb {
        mariadb_json_columns(conn, databases, &mut tables)?;
    }
    read_keys(conn, databases, &mut tables)?;
    let count = tables.len();
    read_columns(conn, databases, tables, opts, each)?;
    Ok(count)
}

/// A table before its columns are read.
struct PendingTable {
    table: TableInfo,
    /// MariaDB JSON columns (longtext with a `json_valid` check).
    json_columns: Vec<String>,
}

impl PendingTable {
    fn id(&self) -> (&str, &str) {
        (&self.table.database, &self.table.name)
    }

    /// The table with all its columns, holding no spare capacity (a sync keeps every table).
    fn finish(mut self) -> TableInfo {
        self.table.columns.shrink_to_fit();
        self.table
    }
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

/// `ORDER BY` (database, table) in byte order, the order of Rust strings (information_schema's
/// own collation compares case-insensitively).
const BY_TABLE: &str = "CAST(TABLE_SCHEMA AS BINARY), CAST(TABLE_NAME AS BINARY)";

/// The position of (database, table) in the sorted list.
fn find(tables: &[PendingTable], db: &str, table: &str) -> Option<usize> {
    tables.binary_search_by(|p| p.id().cmp(&(db, table))).ok()
}

/// Tables and views, without their columns, sorted by (database, table).
fn read_tables(conn: &mut Conn, databases: &[String]) -> Result<Vec<PendingTable>> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS FROM information_schema.TABLES \
         WHERE {} AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')",
        schema_filter(databases, "TABLE_SCHEMA")
    );
    let mut tables = Vec::new();
    for row in rows(conn, &sql, "tables")? {
        let mut row = row.context("discovery: cannot read tables from information_schema")?;
        let database: String = take(&mut row, 0, "TABLES.TABLE_SCHEMA")?;
        let name: String = take(&mut row, 1, "TABLES.TABLE_NAME")?;
        let table_type: String = take(&mut row, 2, "TABLES.TABLE_TYPE")?;
        let rows: Option<u64> = take(&mut row, 3, "TABLES.TABLE_ROWS")?;
        let is_view = table_type == "VIEW";
        tables.push(PendingTable {
            table: TableInfo {
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
            json_columns: vec![],
        });
    }
    tables.sort_by(|a, b| a.id().cmp(&b.id()));
    tables.dedup_by(|a, b| a.id() == b.id());
    Ok(tables)
}

/// Logs what was found; a database asked for that has no tables is a warning.
fn report_found(databases: &[String], tables: &[PendingTable]) {
    if databases.is_empty() {
        log::info!("discovery: {} tables and views found", tables.len());
    } else {
        let found: HashSet<&str> = tables.iter().map(|p| p.id().0).collect();
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
    tables: &mut [PendingTable],
) -> Result<()> {
    let sql = format!(
        "SELECT CONSTRAINT_SCHEMA, TABLE_NAME, CHECK_CLAUSE FROM information_schema.CHECK_CONSTRAINTS \
         WHERE {} AND CHECK_CLAUSE LIKE 'json_valid(%'",
        schema_filter(databases, "CONSTRAINT_SCHEMA")
    );
    for row in rows(conn, &sql, "check constraints")? {
        let mut row =
            row.context("discovery: cannot read check constraints from information_schema")?;
        let db: String = take(&mut row, 0, "CHECK_CONSTRAINTS.CONSTRAINT_SCHEMA")?;
        let table: String = take(&mut row, 1, "CHECK_CONSTRAINTS.TABLE_NAME")?;
        let clause: String = take(&mut row, 2, "CHECK_CONSTRAINTS.CHECK_CLAUSE")?;
        if let (Some(col), Some(i)) = (json_valid_column(&clause), find(tables, &db, &table)) {
            tables[i].json_columns.push(col);
        }
    }
    Ok(())
}

/// Reads the columns in (database, table, position) order as a stream, completing one table
/// at a time and handing it to `each`. Tables without columns are handed over too; columns of
/// tables not listed (created since, or sequences) are skipped.
fn read_columns(
    conn: &mut Conn,
    databases: &[String],
    tables: Vec<PendingTable>,
    opts: &TypeOptions,
    mut each: impl FnMut(TableInfo) -> Result<()>,
) -> Result<()> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IS_NULLABLE, \
         CHARACTER_MAXIMUM_LENGTH, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION, \
         CHARACTER_SET_NAME FROM information_schema.COLUMNS WHERE {} \
         ORDER BY {BY_TABLE}, ORDINAL_POSITION",
        schema_filter(databases, "TABLE_SCHEMA"),
    );
    let mut pending = tables.into_iter().peekable();
    let mut current: Option<PendingTable> = None;
    let mut last = (String::new(), String::new());
    for row in rows(conn, &sql, "columns")? {
        let mut row = row.context("discovery: cannot read columns from information_schema")?;
        let db: String = take(&mut row, 0, "COLUMNS.TABLE_SCHEMA")?;
        let table: String = take(&mut row, 1, "COLUMNS.TABLE_NAME")?;
        let key = (db.as_str(), table.as_str());
        if key != (last.0.as_str(), last.1.as_str()) {
            if key < (last.0.as_str(), last.1.as_str()) {
                return Err(Error::runtime(format!(
                    "discovery: information_schema.COLUMNS came back out of order ('{db}'.'{table}' after '{}'.'{}')",
                    last.0, last.1
                )));
            }
            // Every table before this one is complete.
            if let Some(done) = current.take() {
                each(done.finish())?;
            }
            while let Some(p) = pending.next_if(|p| p.id() < key) {
                each(p.finish())?;
            }
            current = pending.next_if(|p| p.id() == key);
            last = (db, table);
        }
        let Some(t) = current.as_mut() else {
            continue; // a table created or dropped between the queries, or a sequence
        };
        let c = column(&mut row, &t.json_columns, opts)?;
        t.table.columns.push(c);
    }
    for p in current.into_iter().chain(pending) {
        each(p.finish())?;
    }
    Ok(())
}

/// One row of information_schema.COLUMNS (past its table) as a column.
fn column(row: &mut Row, json_columns: &[String], opts: &TypeOptions) -> Result<ColumnInfo> {
    let name: String = take(row, 2, "COLUMNS.COLUMN_NAME")?;
    let data_type: String = take(row, 3, "COLUMNS.DATA_TYPE")?;
    let column_type: String = take(row, 4, "COLUMNS.COLUMN_TYPE")?;
    let nullable: String = take(row, 5, "COLUMNS.IS_NULLABLE")?;
    let max_chars: Option<u64> = take(row, 6, "COLUMNS.CHARACTER_MAXIMUM_LENGTH")?;
    let precision: Option<u64> = take(row, 7, "COLUMNS.NUMERIC_PRECISION")?;
    let scale: Option<u64> = take(row, 8, "COLUMNS.NUMERIC_SCALE")?;
    let fsp: Option<u64> = take(row, 9, "COLUMNS.DATETIME_PRECISION")?;
    let charset: Option<String> = take(row, 10, "COLUMNS.CHARACTER_SET_NAME")?;
    let raw = RawColumnType {
        data_type: &data_type,
        column_type: &column_type,
        max_chars,
        precision,
        scale,
        fsp,
        is_mariadb_json: json_columns.contains(&name),
    };
    let kind = ColumnKind::from_information_schema(&raw, opts);
    Ok(ColumnInfo {
        name,
        column_type,
        nullable: nullable == "YES",
        charset,
        kind,
    })
}

/// The table whose unique indexes are being read: its place in the list, if listed.
struct KeyedTable {
    at: Option<usize>,
    id: (String, String),
    indexes: UniqueIndexes,
}

/// Keys: the primary key, else the narrowest unique index without NULLs or prefixes. Read in
/// table order, one table's indexes at a time.
fn read_keys(conn: &mut Conn, databases: &[String], tables: &mut [PendingTable]) -> Result<()> {
    let sql = format!(
        "SELECT TABLE_SCHEMA, TABLE_NAME, INDEX_NAME, COLUMN_NAME, NULLABLE, SUB_PART \
         FROM information_schema.STATISTICS WHERE {} AND NON_UNIQUE = 0 \
         ORDER BY {BY_TABLE}, INDEX_NAME, SEQ_IN_INDEX",
        schema_filter(databases, "TABLE_SCHEMA"),
    );
    let mut current: Option<KeyedTable> = None;
    for row in rows(conn, &sql, "indexes")? {
        let mut row = row.context("discovery: cannot read indexes from information_schema")?;
        let db: String = take(&mut row, 0, "STATISTICS.TABLE_SCHEMA")?;
        let table: String = take(&mut row, 1, "STATISTICS.TABLE_NAME")?;
        let index: String = take(&mut row, 2, "STATISTICS.INDEX_NAME")?;
        let column: Option<String> = take(&mut row, 3, "STATISTICS.COLUMN_NAME")?;
        let nullable: Option<String> = take(&mut row, 4, "STATISTICS.NULLABLE")?;
        let sub_part: Option<u64> = take(&mut row, 5, "STATISTICS.SUB_PART")?;
        let same = current
            .as_ref()
            .is_some_and(|k| k.id.0 == db && k.id.1 == table);
        if !same {
            if let Some(done) = current.take() {
                set_key(tables, done);
            }
            current = Some(KeyedTable {
                at: find(tables, &db, &table),
                id: (db, table),
                indexes: UniqueIndexes::new(),
            });
        }
        let Some(k) = current.as_mut() else {
            continue;
        };
        let entry = k.indexes.entry(index).or_insert_with(|| (vec![], true));
        let usable =
            column.is_some() && sub_part.is_none() && nullable.as_deref().unwrap_or("") != "YES";
        entry.1 &= usable;
        if let Some(c) = column {
            entry.0.push(c);
        }
    }
    if let Some(done) = current {
        set_key(tables, done);
    }
    Ok(())
}

/// Chooses a table's key among its unique indexes.
fn set_key(tables: &mut [PendingTable], mut k: KeyedTable) {
    let Some(t) = k.at.and_then(|i| tables.get_mut(i)) else {
        return;
    };
    let chosen = if let Some((cols, _)) = k.indexes.remove("PRIMARY") {
        Some(("PRIMARY".to_string(), cols))
    } else {
        k.indexes
            .into_iter()
            .filter(|(_, (_, usable))| *usable)
            .min_by(|(an, (ac, _)), (bn, (bc, _))| ac.len().cmp(&bc.len()).then(an.cmp(bn)))
            .map(|(name, (cols, _))| (name, cols))
    };
    if let Some((name, cols)) = chosen {
        t.table.key = cols;
        t.table.key_index = Some(name);
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

/// The rows of a query, read as they arrive.
fn rows<'c>(
    conn: &'c mut Conn,
    sql: &str,
    what: &str,
) -> Result<mysql::QueryResult<'c, 'c, 'c, mysql::Text>> {
    conn.query_iter(sql).context(format!(
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
