//! One LOG_BASED stream as the binlog reader sees it: its plan, the table's column order at the
//! current binlog position, its table version, and whether it must be re-read through a fresh
//! snapshot (it can no longer be followed from the binlog).

use mysql::Conn;

use super::values::ColumnDecoding;
use crate::catalog::discover::{discover_tables, TableInfo};
use crate::catalog::types::ColumnKind;
use crate::config::TypeOptions;
use crate::encode::ColumnWarnings;
use crate::error::{Error, Result};
use crate::plan::StreamPlan;
use crate::singer::messages::{schema_message, RecordFrame};
use crate::sink::record::OutputSender;
use crate::source::connect::ServerInfo;
use crate::state::{BinlogAt, Bookmark};

use super::gtid::binlog_file_order;

/// A binlog position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Position {
    /// Binlog file.
    pub file: String,
    /// Offset in it (the end of the last complete transaction).
    pub pos: u64,
}

/// Binlog order: file sequence, then offset.
impl Ord for Position {
    fn cmp(&self, other: &Position) -> std::cmp::Ordering {
        binlog_file_order(&self.file, &other.file).then(self.pos.cmp(&other.pos))
    }
}

impl PartialOrd for Position {
    fn partial_cmp(&self, other: &Position) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What the reader knows of a table's column order at the current binlog position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ModelState {
    /// From the bookmark (`columns`), kept up to date through ALTER TABLE statements.
    Known(Vec<String>),
    /// The bookmark has none (older state): the table's current columns are assumed.
    Unseeded,
    /// A statement changed the table in a way that cannot be followed.
    Lost,
}

impl ModelState {
    /// From a bookmark's `columns`.
    pub(crate) fn from_bookmark(b: &Bookmark) -> ModelState {
        match b.binlog().columns() {
            Some(c) => ModelState::Known(c.to_vec()),
            None => ModelState::Unseeded,
        }
    }
}

/// A LOG_BASED stream ready for CDC.
pub(crate) struct CdcStream {
    /// The stream's plan (selected columns); replaced when a schema change is seen.
    pub plan: StreamPlan,
    /// Every column of the table in ordinal order (names), for positional mapping.
    pub table_columns: Vec<String>,
    /// Their kinds, to detect a schema that changed since older binlog events were written.
    pub table_kinds: Vec<ColumnKind>,
    /// The column order at the current binlog position (see `ddl.rs`).
    pub model: ModelState,
    /// Decoding facts per selected column.
    pub decodings: Vec<ColumnDecoding>,
    /// The bookmark (at the start of the run, then at each transaction that changed it).
    pub bookmark: Bookmark,
    /// Where the bookmark stood at the start of the run: events up to it are already sent.
    pub start: Option<Position>,
    /// The table version its records carry (from the initial load; a TRUNCATE, a DROP or a
    /// re-snapshot starts a new one).
    pub version: Option<u64>,
    /// The table was dropped (or renamed away) at the current binlog position.
    pub dropped: bool,
    /// Why the table must be re-read through a fresh snapshot (it can no longer be followed
    /// from the binlog); its events are skipped from there on.
    pub resnapshot: Option<String>,
    /// Indexes (into the plan's columns) of the key properties.
    pub key_columns: Vec<usize>,
    /// The RECORD frame (stream, columns, version).
    pub frame: RecordFrame,
    /// Value warnings per selected column.
    pub warnings: Vec<ColumnWarnings>,
}

impl CdcStream {
    /// A stream past its initial load, from its plan, its table and its bookmark.
    pub(crate) fn new(
        plan: StreamPlan,
        table: Option<&TableInfo>,
        bookmark: Bookmark,
        time_extracted: &str,
    ) -> CdcStream {
        let version = bookmark.version();
        let start = bookmark_position(&bookmark);
        let dropped = bookmark.binlog().is_dropped();
        let mut s = CdcStream {
            table_columns: table
                .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                .unwrap_or_default(),
            table_kinds: table
                .map(|t| t.columns.iter().map(|c| c.kind.clone()).collect())
                .unwrap_or_default(),
            decodings: decodings_for(&plan, table),
            model: ModelState::from_bookmark(&bookmark),
            bookmark,
            start,
            version,
            dropped,
            resnapshot: None,
            key_columns: Vec::new(),
            frame: RecordFrame::new("", &[], None, ""),
            warnings: Vec::new(),
            plan,
        };
        s.reframe(time_extracted);
        s
    }

    /// Rebuilds what depends on the plan and the version: the frame, key indexes, warnings.
    pub(crate) fn reframe(&mut self, time_extracted: &str) {
        let mut names: Vec<&str> = self.plan.columns.iter().map(|c| c.name.as_str()).collect();
        names.push("_sdc_deleted_at");
        self.frame = RecordFrame::new(&self.plan.stream_id, &names, self.version, time_extracted);
        self.key_columns = self
            .plan
            .key_properties
            .iter()
            .filter_map(|k| self.plan.columns.iter().position(|c| &c.name == k))
            .collect();
        if self.warnings.len() != self.plan.columns.len() {
            self.warnings = vec![ColumnWarnings::default(); self.plan.columns.len()];
        }
    }

    /// Where this stream's bookmark stands.
    pub(crate) fn position(&self) -> Option<Position> {
        bookmark_position(&self.bookmark)
    }

    /// The bookmark at `file`:`pos`. A stream to be re-snapshotted gets a bookmark without a
    /// position, so the next load re-reads it (with a new version) whenever that happens.
    pub(crate) fn bookmark_at(&self, file: &str, pos: u64, gtid: Option<String>) -> Bookmark {
        if let Some(why) = &self.resnapshot {
            return self.bookmark.resnapshot(why, self.version);
        }
        // The column order at this position, for servers that log no column names.
        let columns = match &self.model {
            ModelState::Known(m) => Some(m.clone()),
            ModelState::Unseeded => Some(self.table_columns.clone()),
            ModelState::Lost => None,
        };
        self.bookmark.advanced(BinlogAt {
            file,
            pos,
            gtid,
            columns,
            version: self.version,
            dropped: self.dropped,
        })
    }

    /// Whether events at `pos` are already covered by the bookmark the run started from.
    pub(crate) fn covers(&self, pos: &Position) -> bool {
        self.start
            .as_ref()
            .is_some_and(|s| pos.cmp(s) != std::cmp::Ordering::Greater)
    }
}

fn bookmark_position(b: &Bookmark) -> Option<Position> {
    let (file, pos) = b.binlog().position()?;
    Some(Position {
        file: file.to_string(),
        pos,
    })
}

/// A LOG_BASED stream's SCHEMA (its plan's schema already has `_sdc_deleted_at`).
pub(crate) fn send_schema(s: &CdcStream, out: &OutputSender) -> Result<()> {
    out.send(schema_message(
        &s.plan.stream_id,
        &s.plan.schema,
        &s.plan.key_properties,
        None,
    ))
}

/// An event's time as RFC 3339 UTC (`_sdc_deleted_at`).
pub(crate) fn commit_time(ts: u32) -> String {
    let secs = ts as i64;
    let (y, m, d) = crate::singer::time::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+00:00",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// For each selected column, its index in the rows event (by name when the table map has
/// names, else by position in the table's current columns).
pub(crate) fn column_mapping(
    s: &CdcStream,
    tme: &mysql::binlog::events::TableMapEvent<'_>,
) -> std::result::Result<Vec<Option<usize>>, String> {
    use mysql::binlog::events::OptionalMetadataField;
    let mut names: Option<Vec<String>> = None;
    for field in tme.iter_optional_meta() {
        if let Ok(OptionalMetadataField::ColumnName(n)) = field {
            names = Some(
                n.iter_names()
                    .filter_map(|x| x.ok())
                    .map(|x| x.name().into_owned())
                    .collect(),
            );
        }
    }
    let order: Vec<String> = match names {
        Some(n) => n,
        None => {
            let order = match &s.model {
                ModelState::Known(m) => m.clone(),
                ModelState::Unseeded => s.table_columns.clone(),
                ModelState::Lost => {
                    return Err(
                        "an earlier schema change could not be followed and the binlog carries no column names".into(),
                    )
                }
            };
            if tme.columns_count() as usize != order.len() {
                return Err(format!(
                    "the binlog has {} columns for the table where {} were expected (a schema change that was not followed?) and no column names",
                    tme.columns_count(),
                    order.len()
                ));
            }
            for (i, name) in order.iter().enumerate() {
                let binlog_type = tme.get_column_type(i).ok().flatten();
                let kind = s
                    .table_columns
                    .iter()
                    .position(|n| n == name)
                    .and_then(|k| s.table_kinds.get(k));
                if let (Some(t), Some(kind)) = (binlog_type, kind) {
                    if !compatible(t, kind) {
                        return Err(format!(
                            "column {} ('{}') is {:?} in the binlog but {:?} in the table now (the schema changed since these events were written) and the binlog carries no column names",
                            i + 1,
                            name,
                            t,
                            kind
                        ));
                    }
                }
            }
            order
        }
    };
    Ok(s.plan
        .columns
        .iter()
        .map(|c| order.iter().position(|n| n == &c.name))
        .collect())
}

/// Whether a binlog column type can hold a column of `kind` (families, not exact types: enough
/// to notice columns that moved when the binlog has no names).
fn compatible(t: mysql::consts::ColumnType, kind: &ColumnKind) -> bool {
    use mysql::consts::ColumnType::*;
    match t {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_INT24 | MYSQL_TYPE_LONG
        | MYSQL_TYPE_LONGLONG => {
            matches!(kind, ColumnKind::Integer { .. } | ColumnKind::Boolean)
        }
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => matches!(kind, ColumnKind::Decimal { .. }),
        MYSQL_TYPE_FLOAT => matches!(kind, ColumnKind::Float),
        MYSQL_TYPE_DOUBLE => matches!(kind, ColumnKind::Double),
        MYSQL_TYPE_YEAR => matches!(kind, ColumnKind::Year),
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => matches!(kind, ColumnKind::Date),
        MYSQL_TYPE_DATETIME | MYSQL_TYPE_DATETIME2 => matches!(kind, ColumnKind::DateTime { .. }),
        MYSQL_TYPE_TIMESTAMP | MYSQL_TYPE_TIMESTAMP2 => {
            matches!(kind, ColumnKind::Timestamp { .. })
        }
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => matches!(kind, ColumnKind::Time { .. }),
        MYSQL_TYPE_BIT => matches!(kind, ColumnKind::Bit { .. }),
        MYSQL_TYPE_JSON => matches!(kind, ColumnKind::Json),
        MYSQL_TYPE_GEOMETRY => matches!(kind, ColumnKind::Spatial),
        MYSQL_TYPE_ENUM => matches!(kind, ColumnKind::Enum { .. }),
        MYSQL_TYPE_SET => matches!(kind, ColumnKind::Set { .. }),
        MYSQL_TYPE_VARCHAR
        | MYSQL_TYPE_VAR_STRING
        | MYSQL_TYPE_STRING
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_BLOB => matches!(
            kind,
            ColumnKind::Text { .. }
                | ColumnKind::Binary
                | ColumnKind::Json
                | ColumnKind::Enum { .. }
                | ColumnKind::Set { .. }
                | ColumnKind::Uuid
                | ColumnKind::Inet4
                | ColumnKind::Inet6
        ),
        _ => true,
    }
}

/// Decoding facts of a plan's columns, from the table's discovered columns.
pub(crate) fn decodings_for(plan: &StreamPlan, table: Option<&TableInfo>) -> Vec<ColumnDecoding> {
    plan.columns
        .iter()
        .map(|pc| {
            let info = table.and_then(|t| t.columns.iter().find(|c| c.name == pc.name));
            ColumnDecoding {
                kind: pc.kind.clone(),
                charset: info.and_then(|c| c.charset.clone()),
                fixed_binary_len: info
                    .and_then(|c| c.column_type.strip_prefix("binary("))
                    .and_then(|r| r.trim_end_matches(')').parse().ok()),
            }
        })
        .collect()
}

/// What a schema refresh found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// The table's columns are as planned.
    Unchanged,
    /// The plan was rebuilt and a new SCHEMA sent.
    Changed,
    /// The table no longer exists (dropped or renamed later in the binlog): the plan is kept.
    Missing,
}

/// Re-reads a stream's table after a schema change; when its columns changed, rebuilds the
/// plan and sends a new SCHEMA (before any record that follows). Columns that were selected
/// stay selected while they exist; new columns join when every column was selected before.
/// The caller rebuilds the frame (`CdcStream::reframe`).
pub(crate) fn refresh_schema(
    conn: &mut Conn,
    server: &ServerInfo,
    types: &TypeOptions,
    s: &mut CdcStream,
    out: &OutputSender,
) -> Result<Refresh> {
    let tables = discover_tables(
        conn,
        server.flavor,
        std::slice::from_ref(&s.plan.database),
        types,
    )?;
    let Some(table) = tables.into_iter().find(|t| t.name == s.plan.table) else {
        return Ok(Refresh::Missing);
    };
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let same_kinds = table.columns.iter().all(|c| {
        s.plan
            .columns
            .iter()
            .all(|p| p.name != c.name || p.kind == c.kind)
    });
    if names == s.table_columns && same_kinds {
        return Ok(Refresh::Unchanged);
    }
    let all_selected = s
        .table_columns
        .iter()
        .all(|n| s.plan.columns.iter().any(|p| &p.name == n));
    let selected: Vec<&str> = table
        .columns
        .iter()
        .filter(|c| {
            s.plan.columns.iter().any(|p| p.name == c.name)
                || all_selected
                    && !s.table_columns.contains(&c.name)
                    && super::values::supported(&c.kind, server.flavor)
        })
        .map(|c| c.name.as_str())
        .collect();
    let plan = crate::plan::rebuild(&table, &selected, s.plan.key_properties.clone(), types)?;
    if let Some(c) = plan
        .columns
        .iter()
        .find(|c| !super::values::supported(&c.kind, server.flavor))
    {
        return Err(Error::runtime(format!(
            "stream '{}': column '{}' became a type the binlog reader cannot decode exactly yet",
            plan.stream_id, c.name
        )));
    }
    s.decodings = decodings_for(&plan, Some(&table));
    s.table_kinds = table.columns.iter().map(|c| c.kind.clone()).collect();
    s.table_columns = names;
    s.plan = plan;
    send_schema(s, out)?;
    Ok(Refresh::Changed)
}
