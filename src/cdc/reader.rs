//! The binlog reader: one replication connection per run serves every LOG_BASED stream, from
//! the oldest stream bookmark up to the server's position at the start of the run.
//!
//! Promises:
//! - Inserts and updates emit the after image, deletes the before image with `_sdc_deleted_at`
//!   (the event's commit time, UTC).
//! - Rows are mapped with the table map event that precedes them (by column name when the
//!   binlog carries names, else by position against `information_schema`), never by a cached
//!   table id alone.
//! - Bookmarks (`log_file`, `log_pos`, and the GTID position when known) advance only at
//!   transaction boundaries (XID or COMMIT), after every row of the transaction was sent, and
//!   every LOG_BASED stream's bookmark reaches the end position even when its table was idle.
//! - Anything that cannot be decoded exactly (compressed transactions, partial JSON) stops the
//!   run with a clear error; nothing is skipped silently.

use std::collections::HashMap;

use mysql::binlog::events::{EventData, RowsEventData};
use mysql::binlog::EventType;
use mysql::prelude::Queryable;
use mysql::{BinlogDumpFlags, BinlogRequest, Conn};
use serde_json::{json, Map, Value};

use super::gtid::{binlog_file_order, MariadbGtidPos, MysqlGtidSet};
use super::mariadb;
use super::values::{text_bytes, ColumnDecoding};
use crate::catalog::discover::{discover_tables, TableInfo};
use crate::catalog::types::ColumnKind;
use crate::config::{Flavor, TypeOptions};
use crate::encode::{encode_cell, ColumnWarnings};
use crate::error::{Error, MysqlContext, Result};
use crate::singer::messages::{schema_message, RecordFrame};
use crate::source::connect::{Connector, ServerInfo};
use crate::source::snapshot::{read_coords, BinlogCoords};
use crate::sync::output::{OutputSender, BUFFER_BYTES};
use crate::sync::plan::StreamPlan;

/// A binlog position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Position {
    /// Binlog file.
    pub file: String,
    /// Offset in it (the end of the last complete transaction).
    pub pos: u64,
}

impl Position {
    fn cmp(&self, other: &Position) -> std::cmp::Ordering {
        binlog_file_order(&self.file, &other.file).then(self.pos.cmp(&other.pos))
    }
}

/// A LOG_BASED stream ready for CDC.
pub struct CdcStream {
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
    /// The bookmark at the start of the run.
    pub bookmark: Map<String, Value>,
}

/// What the reader knows of a table's column order at the current binlog position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelState {
    /// From the bookmark (`columns`), kept up to date through ALTER TABLE statements.
    Known(Vec<String>),
    /// The bookmark has none (older state): the table's current columns are assumed.
    Unseeded,
    /// A statement changed the table in a way that cannot be followed.
    Lost,
}

impl ModelState {
    /// From a bookmark's `columns`.
    pub fn from_bookmark(b: &Map<String, Value>) -> ModelState {
        match b.get("columns").and_then(Value::as_array) {
            Some(a) => ModelState::Known(
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            ),
            None => ModelState::Unseeded,
        }
    }
}

/// Applies a DDL statement to a stream's column model.
fn follow_ddl(s: &mut CdcStream, sql: &str, default_db: &str) {
    if let ModelState::Known(model) = &mut s.model {
        match super::ddl::apply(model, sql, default_db, &s.plan.database, &s.plan.table) {
            super::ddl::Applied::Updated => return,
            super::ddl::Applied::Unknown => {}
            super::ddl::Applied::NotForTable => {
                let lower = sql.trim_start().to_ascii_lowercase();
                if ![
                    "rename table",
                    "drop table",
                    "create table",
                    "create or replace table",
                ]
                .iter()
                .any(|k| lower.starts_with(k))
                {
                    return;
                }
            }
        }
        log::warn!(
            "stream '{}': cannot follow the column order through: {}",
            s.plan.stream_id,
            sql.chars().take(120).collect::<String>()
        );
        s.model = ModelState::Lost;
    }
}

impl CdcStream {
    /// Where this stream's bookmark stands.
    pub fn position(&self) -> Option<Position> {
        Some(Position {
            file: self.bookmark.get("log_file")?.as_str()?.to_string(),
            pos: self.bookmark.get("log_pos")?.as_u64()?,
        })
    }
}

/// Starts a binlog dump at `from` (by GTID when `gtid` is given).
fn open_dump(
    mut conn: Conn,
    server: &ServerInfo,
    sid: u32,
    from: &Position,
    gtid: Option<&str>,
) -> Result<mysql::BinlogStream> {
    if server.flavor == Flavor::Mariadb {
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .context("binlog: announcing MariaDB replica capability")?;
    }
    let mut request = BinlogRequest::new(sid)
        .with_filename(from.file.clone().into_bytes())
        .with_pos(from.pos)
        .with_flags(BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
    if gtid.is_some() {
        request = gtid_request(&mut conn, server, request, gtid)?;
    }
    conn.get_binlog_stream(request)
        .map_err(|e| dump_error(e, from))
}

/// The GTID position as transactions pass, per flavor.
enum GtidTracker {
    Mariadb(MariadbGtidPos),
    Mysql(MysqlGtidSet),
}

impl GtidTracker {
    fn start(flavor: Flavor, from: Option<&str>) -> Result<GtidTracker> {
        let text = from.unwrap_or("");
        let bad = |e: String| {
            Error::usage(format!(
                "state: the bookmark's gtid '{text}' is not usable: {e}"
            ))
        };
        Ok(match flavor {
            Flavor::Mariadb => GtidTracker::Mariadb(MariadbGtidPos::parse(text).map_err(bad)?),
            Flavor::Mysql => GtidTracker::Mysql(MysqlGtidSet::parse(text).map_err(bad)?),
        })
    }

    fn text(&self) -> Option<String> {
        let t = match self {
            GtidTracker::Mariadb(p) => p.to_string(),
            GtidTracker::Mysql(s) => s.to_string(),
        };
        (!t.is_empty()).then_some(t)
    }
}

/// Turns a file/position request into a GTID one (`use_gtid`): MariaDB through
/// `@slave_connect_state`, MySQL through COM_BINLOG_DUMP_GTID with the GTID set.
fn gtid_request<'r>(
    conn: &mut Conn,
    server: &ServerInfo,
    request: BinlogRequest<'r>,
    gtid: Option<&str>,
) -> Result<BinlogRequest<'r>> {
    let Some(gtid) = gtid.filter(|g| !g.is_empty()) else {
        log::info!("binlog: use_gtid is set but the bookmark has no GTID yet: starting from its file/position");
        return Ok(request);
    };
    match server.flavor {
        Flavor::Mariadb => {
            MariadbGtidPos::parse(gtid)
                .map_err(|e| Error::usage(format!("state: gtid '{gtid}': {e}")))?;
            conn.query_drop(format!("SET @slave_connect_state = '{gtid}'"))
                .context("binlog: setting slave_connect_state")?;
            conn.query_drop("SET @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0")
                .context("binlog: setting GTID replica options")?;
            log::info!("binlog: starting from MariaDB GTID position {gtid}");
            Ok(request.with_filename(Vec::new()).with_pos(4u64))
        }
        Flavor::Mysql => {
            let mode: Option<String> = conn
                .query_first("SELECT @@GLOBAL.gtid_mode")
                .context("binlog: reading gtid_mode")?;
            if mode.as_deref() != Some("ON") {
                return Err(Error::runtime(format!(
                    "use_gtid is set but the server has gtid_mode={}: turn GTIDs on or set use_gtid to false",
                    mode.unwrap_or_default()
                )));
            }
            let set = MysqlGtidSet::parse(gtid)
                .map_err(|e| Error::usage(format!("state: gtid '{gtid}': {e}")))?;
            let mut sids = Vec::new();
            for (uuid, tag, ranges) in set.entries() {
                let hex: String = uuid.chars().filter(|c| *c != '-').collect();
                let mut bytes = [0u8; 16];
                for (i, b) in bytes.iter_mut().enumerate() {
                    *b = u8::from_str_radix(&hex[i * 2..i * 2 + 2], 16).unwrap_or(0);
                }
                let mut sid = mysql_common::packets::Sid::new(bytes).with_intervals(
                    ranges
                        .iter()
                        .map(|&(s, e)| mysql_common::packets::GnoInterval::new(s, e + 1))
                        .collect(),
                );
                if !tag.is_empty() {
                    let t = mysql_common::packets::Tag::new(tag.to_string()).map_err(|_| {
                        Error::usage(format!("state: gtid '{gtid}': bad tag '{tag}'"))
                    })?;
                    sid = sid.with_tag(t);
                }
                sids.push(sid);
            }
            log::info!("binlog: starting from MySQL GTID set {gtid}");
            Ok(request.with_use_gtid(true).with_sids(sids))
        }
    }
}

/// Checks the server settings CDC depends on, with what to change.
pub fn preflight(conn: &mut Conn) -> Result<()> {
    let row: Option<(Option<String>, Option<String>, Option<String>)> = conn
        .query_first("SELECT @@GLOBAL.log_bin, @@GLOBAL.binlog_format, @@GLOBAL.binlog_row_image")
        .context("LOG_BASED: reading binlog settings")?;
    let (log_bin, format, image) = row.unwrap_or_default();
    let on = matches!(log_bin.as_deref(), Some("1") | Some("ON"));
    if !on {
        return Err(Error::runtime(
            "LOG_BASED needs the binary log: start the server with log_bin (and binlog_format=ROW, binlog_row_image=FULL)",
        ));
    }
    if format.as_deref() != Some("ROW") {
        return Err(Error::runtime(format!(
            "LOG_BASED needs binlog_format=ROW (the server has {}): SET GLOBAL binlog_format='ROW' and make it permanent in the server config",
            format.unwrap_or_default()
        )));
    }
    if image.as_deref() != Some("FULL") {
        return Err(Error::runtime(format!(
            "LOG_BASED needs binlog_row_image=FULL (the server has {}): other images leave columns out of the binlog",
            image.unwrap_or_default()
        )));
    }
    Ok(())
}

/// A replica server id for this run: the configured one, or a random one in the valid range
/// that differs from the server's own.
pub fn server_id(configured: Option<u32>, conn: &mut Conn) -> Result<u32> {
    if let Some(id) = configured {
        return Ok(id);
    }
    let own: Option<u32> = conn
        .query_first("SELECT @@server_id")
        .context("LOG_BASED: reading @@server_id")?;
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64 ^ d.as_secs())
        .unwrap_or(0)
        ^ ((std::process::id() as u64) << 16);
    let mut id = (seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 33) as u32 % 0x7fff_0000 + 0x1000;
    if Some(id) == own {
        id += 1;
    }
    Ok(id)
}

/// Reads the binlog for `streams` up to the position the server had when this function
/// started, writing RECORDs and bookmarks to `out`.
#[allow(clippy::too_many_arguments)]
pub fn run(
    connector: &Connector,
    server: &ServerInfo,
    configured_server_id: Option<u32>,
    use_gtid: bool,
    reconnect_limit: u32,
    types: &TypeOptions,
    streams: &mut [CdcStream],
    out: &OutputSender,
    time_extracted: &str,
) -> Result<()> {
    if streams.is_empty() {
        return Ok(());
    }
    let mut conn = connector.connect("binlog")?;
    preflight(&mut conn)?;
    let end = read_coords(&mut conn, server)?.ok_or_else(|| {
        Error::runtime("LOG_BASED: the server reports no binlog position (SHOW MASTER STATUS needs REPLICATION CLIENT / BINLOG MONITOR)")
    })?;
    let end_pos = Position {
        file: end.file.clone(),
        pos: end.position,
    };
    let start = streams
        .iter()
        .filter_map(|s| s.position())
        .min_by(|a, b| a.cmp(b))
        .ok_or_else(|| Error::runtime("LOG_BASED: no stream has a binlog bookmark"))?;
    // The GTID position that goes with the oldest bookmark (to keep tracking it, and to start
    // from it when use_gtid is set).
    let start_gtid: Option<String> = streams
        .iter()
        .filter(|s| s.position().as_ref() == Some(&start))
        .find_map(|s| {
            s.bookmark
                .get("gtid")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    let sid = server_id(configured_server_id, &mut conn)?;
    log::info!(
        "binlog: reading {}:{} up to {}:{} for {} stream(s) as replica server_id {sid}",
        start.file,
        start.pos,
        end_pos.file,
        end_pos.pos,
        streams.len()
    );
    for s in streams.iter() {
        send_schema(s, out)?;
    }
    match start.cmp(&end_pos) {
        std::cmp::Ordering::Equal => {
            finish(streams, out, &end, None)?;
            return Ok(());
        }
        std::cmp::Ordering::Greater => {
            return Err(Error::runtime(format!(
                "binlog: the bookmark {}:{} is ahead of the server's binary log (it ends at {}:{}): is this another server, or was the binlog reset? Re-snapshot the LOG_BASED streams: remove their bookmarks from the state",
                start.file, start.pos, end_pos.file, end_pos.pos
            )))
        }
        std::cmp::Ordering::Less => {}
    }
    // The fake rotate event that opens the dump arrives before the format description event,
    // so the driver cannot know it carries a checksum: we do.
    let checksum: Option<String> = conn
        .query_first("SELECT @@GLOBAL.binlog_checksum")
        .context("binlog: reading binlog_checksum")?;
    let fake_rotate_footer = if checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE")) {
        4
    } else {
        0
    };
    let mut seen_fde = false;
    let mut binlog = open_dump(
        conn,
        server,
        sid,
        &start,
        use_gtid.then_some(start_gtid.as_deref()).flatten(),
    )?;
    let mut reconnects = 0u32;

    let by_table: HashMap<(String, String), usize> = streams
        .iter()
        .enumerate()
        .map(|(i, s)| ((s.plan.database.clone(), s.plan.table.clone()), i))
        .collect();
    let mut frames: Vec<RecordFrame> = streams
        .iter()
        .map(|s| frame_of(s, time_extracted))
        .collect();
    let mut schema_conn: Option<Conn> = None;
    let starts: Vec<Option<Position>> = streams.iter().map(|s| s.position()).collect();
    let mut warnings: Vec<Vec<ColumnWarnings>> = streams
        .iter()
        .map(|s| vec![ColumnWarnings::default(); s.plan.columns.len()])
        .collect();
    let mut gtid = GtidTracker::start(server.flavor, start_gtid.as_deref())?;
    let mut file = start.file.clone();
    let mut touched = vec![false; streams.len()];
    let mut in_txn = false;
    let mut buf = out.buffer();
    let mut rows_total = 0u64;
    let mut last_commit: Option<Position> = None;
    let mut last_seen: Option<Position> = None;

    while let Some(event) = binlog.next() {
        if let Some(sig) = crate::interrupt::requested() {
            // Records of an unfinished transaction stay unsent; the bookmark is at the last commit.
            return Err(Error::Interrupted(sig));
        }
        let event = match event {
            Ok(ev) => ev,
            Err(e)
                if crate::sync::rows::connection_lost(&e)
                    && reconnects < reconnect_limit.max(1) =>
            {
                // Resume at the last transaction boundary; the unfinished transaction's records
                // are dropped (any already flushed come again: duplicates, never a gap).
                reconnects += 1;
                let from = last_commit.clone().unwrap_or_else(|| start.clone());
                log::warn!(
                    "binlog: the replication connection dropped ({}); reconnecting to resume at {}:{}",
                    Error::mysql("", e).to_string().trim_start_matches(": "),
                    from.file,
                    from.pos
                );
                buf.clear();
                touched.iter_mut().for_each(|t| *t = false);
                in_txn = false;
                seen_fde = false;
                file = from.file.clone();
                let conn = connector.connect("binlog (reconnect)")?;
                binlog = open_dump(conn, server, sid, &from, None)?;
                continue;
            }
            Err(e) => return Err(dump_error(e, &start)),
        };
        let header = event.header();
        let pos = Position {
            file: file.clone(),
            pos: header.log_pos() as u64,
        };
        if pos.pos > 0 {
            last_seen = Some(pos.clone());
        }
        let raw_type = header.event_type_raw();
        match raw_type {
            mariadb::GTID => {
                let g = mariadb::gtid_event(event.data(), header.server_id())
                    .map_err(|e| Error::runtime(format!("binlog {}:{}: {e}", pos.file, pos.pos)))?;
                if let GtidTracker::Mariadb(p) = &mut gtid {
                    p.update(g.gtid);
                }
                in_txn = g.flags & mariadb::FL_STANDALONE == 0;
                continue;
            }
            mariadb::GTID_LIST
            | mariadb::BINLOG_CHECKPOINT
            | mariadb::ANNOTATE_ROWS
            | mariadb::START_ENCRYPTION => continue,
            raw => {
                if let Some(why) = refused_event(raw) {
                    return Err(Error::runtime(format!(
                        "binlog {}:{}: {why}",
                        pos.file, pos.pos
                    )));
                }
            }
        }
        let Ok(event_type) = header.event_type() else {
            continue;
        };
        match event_type {
            EventType::GTID_EVENT | EventType::GTID_TAGGED_LOG_EVENT => {
                if let (GtidTracker::Mysql(set), Ok(Some(EventData::GtidEvent(g)))) =
                    (&mut gtid, event.read_data())
                {
                    let tag = g.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
                    set.add(&super::values::uuid_text(&g.sid()), &tag, g.gno());
                }
                continue;
            }
            EventType::FORMAT_DESCRIPTION_EVENT => {
                seen_fde = true;
                continue;
            }
            EventType::ROTATE_EVENT => {
                // body: position (8 bytes) then the file name (then a checksum the driver
                // has not stripped when this is the dump's opening fake rotate).
                let data = event.data();
                let footer = if seen_fde { 0 } else { fake_rotate_footer };
                let name = data
                    .get(8..data.len().saturating_sub(footer))
                    .ok_or_else(|| Error::runtime("binlog: truncated rotate event"))?;
                file = String::from_utf8_lossy(name).into_owned();
                continue;
            }
            EventType::QUERY_EVENT => {
                if let Ok(Some(EventData::QueryEvent(q))) = event.read_data() {
                    let sql = q.query();
                    let default_db = q.schema().into_owned();
                    let trimmed = sql.trim();
                    if trimmed.eq_ignore_ascii_case("BEGIN") {
                        in_txn = true;
                        continue;
                    }
                    if trimmed.eq_ignore_ascii_case("COMMIT") {
                        commit(&mut buf, out, streams, &mut touched, &pos, gtid.text())?;
                        last_commit = Some(pos.clone());
                        in_txn = false;
                    } else if !in_txn {
                        last_commit = Some(pos.clone());
                        let affected = ddl_targets(trimmed, streams);
                        if !affected.is_empty() {
                            out.send(std::mem::replace(&mut buf, out.buffer()))?;
                            let conn = match schema_conn.as_mut() {
                                Some(c) => c,
                                None => {
                                    schema_conn.insert(connector.connect("binlog schema changes")?)
                                }
                            };
                            for i in affected {
                                follow_ddl(&mut streams[i], trimmed, &default_db);
                                if refresh_schema(conn, server, types, &mut streams[i], out)? {
                                    frames[i] = frame_of(&streams[i], time_extracted);
                                    warnings[i] = vec![
                                        ColumnWarnings::default();
                                        streams[i].plan.columns.len()
                                    ];
                                    log::info!(
                                        "stream '{}': schema change at binlog {}:{} ({}): new SCHEMA sent",
                                        streams[i].plan.stream_id, pos.file, pos.pos,
                                        trimmed.chars().take(80).collect::<String>()
                                    );
                                }
                            }
                        }
                    }
                }
            }
            EventType::XID_EVENT => {
                commit(&mut buf, out, streams, &mut touched, &pos, gtid.text())?;
                last_commit = Some(pos.clone());
                in_txn = false;
            }
            EventType::WRITE_ROWS_EVENT
            | EventType::UPDATE_ROWS_EVENT
            | EventType::DELETE_ROWS_EVENT
            | EventType::WRITE_ROWS_EVENT_V1
            | EventType::UPDATE_ROWS_EVENT_V1
            | EventType::DELETE_ROWS_EVENT_V1
            | EventType::PARTIAL_UPDATE_ROWS_EVENT => {
                let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
                    return Err(Error::runtime(format!(
                        "binlog {}:{}: unreadable rows event",
                        pos.file, pos.pos
                    )));
                };
                let Some(tme) = binlog.get_tme(rows.table_id()) else {
                    return Err(Error::runtime(format!(
                        "binlog {}:{}: rows event without its table map",
                        pos.file, pos.pos
                    )));
                };
                let key = (
                    tme.database_name().into_owned(),
                    tme.table_name().into_owned(),
                );
                let Some(&idx) = by_table.get(&key) else {
                    continue;
                };
                if starts[idx]
                    .as_ref()
                    .is_some_and(|s| pos.cmp(s) != std::cmp::Ordering::Greater)
                {
                    continue; // this stream's bookmark already covers the transaction
                }
                let s = &streams[idx];
                let mapping = column_mapping(s, tme)?;
                let deleted_at = match rows {
                    RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
                        Some(commit_time(header.timestamp()))
                    }
                    _ => None,
                };
                for row in rows.rows(tme) {
                    let (before, after) = row.map_err(|e| {
                        Error::runtime(format!("binlog {}:{}: {e}", pos.file, pos.pos))
                    })?;
                    let image = if deleted_at.is_some() { before } else { after };
                    let Some(image) = image else { continue };
                    let frame = &frames[idx];
                    buf.extend_from_slice(frame.prefix());
                    for (ci, dec) in s.decodings.iter().enumerate() {
                        buf.extend_from_slice(frame.key(ci));
                        let value = mapping[ci].and_then(|ti| image.as_ref(ti));
                        let bytes = match value {
                            Some(v) => text_bytes(dec, v).map_err(|e| {
                                Error::runtime(format!(
                                    "stream '{}' column '{}' at binlog {}:{}: {e}",
                                    s.plan.stream_id, s.plan.columns[ci].name, pos.file, pos.pos
                                ))
                            })?,
                            None => None,
                        };
                        encode_cell(
                            s.plan.columns[ci].encoder,
                            bytes.as_deref(),
                            &mut buf,
                            &mut warnings[idx][ci],
                        );
                    }
                    buf.extend_from_slice(frame.key(s.decodings.len()));
                    match &deleted_at {
                        Some(t) => crate::encode::json::write_str(&mut buf, t),
                        None => buf.extend_from_slice(b"null"),
                    }
                    buf.extend_from_slice(frame.suffix());
                    rows_total += 1;
                    crate::sync::rows::invalid_text(&s.plan, &warnings[idx])?;
                    if buf.len() >= BUFFER_BYTES {
                        out.send(std::mem::replace(&mut buf, out.buffer()))?;
                    }
                }
                touched[idx] = true;
            }
            _ => {}
        }
        if !in_txn && pos.cmp(&end_pos) != std::cmp::Ordering::Less {
            break;
        }
    }
    // Only a stream read through to the end position, at a transaction boundary, may move the
    // bookmarks there; otherwise the rows of an unfinished transaction are not sent.
    let complete = !in_txn
        && last_seen
            .as_ref()
            .is_some_and(|p| p.cmp(&end_pos) != std::cmp::Ordering::Less);
    if !complete {
        return Err(Error::runtime(format!(
            "binlog: the server ended the stream at {} before {}:{}{}; the bookmarks stay at the last complete transaction: run again",
            last_seen.map_or("its start".to_string(), |p| format!("{}:{}", p.file, p.pos)),
            end_pos.file,
            end_pos.pos,
            if in_txn { ", inside a transaction" } else { "" }
        )));
    }
    out.send(buf)?;
    for (s, w) in streams.iter().zip(&warnings) {
        for (c, w) in s.plan.columns.iter().zip(w) {
            if w.any() {
                log::warn!(
                    "stream '{}' column '{}': {}",
                    s.plan.stream_id,
                    c.name,
                    w.describe()
                );
            }
        }
    }
    log::info!(
        "binlog: {rows_total} change records up to {}:{}",
        end_pos.file,
        end_pos.pos
    );
    // Every stream, changed or idle, moves to the end: the transactions up to it are done.
    finish(streams, out, &end, gtid.text())
}

/// Events the reader refuses rather than skip (their rows would be lost): compressed
/// transactions (MySQL) and compressed events (MariaDB `log_bin_compress`).
pub fn refused_event(raw_type: u8) -> Option<&'static str> {
    match raw_type {
        40 => Some(
            "compressed transactions (binlog_transaction_compression=ON) cannot be read yet: turn it off for LOG_BASED",
        ),
        165..=174 => Some(
            "the server writes compressed binlog events (log_bin_compress=ON): LOG_BASED cannot read them; turn log_bin_compress off",
        ),
        _ => None,
    }
}

/// A LOG_BASED stream's SCHEMA (its plan's schema already has `_sdc_deleted_at`).
fn send_schema(s: &CdcStream, out: &OutputSender) -> Result<()> {
    out.send(schema_message(
        &s.plan.stream_id,
        &s.plan.schema,
        &s.plan.key_properties,
        None,
    ))
}

fn commit_time(ts: u32) -> String {
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

fn bookmark_at(s: &CdcStream, file: &str, pos: u64, gtid: Option<String>) -> Map<String, Value> {
    let mut b = s.bookmark.clone();
    // The column order at this position, for servers that log no column names.
    let columns = match &s.model {
        ModelState::Known(m) => Some(m.clone()),
        ModelState::Unseeded => Some(s.table_columns.clone()),
        ModelState::Lost => None,
    };
    match columns {
        Some(c) => b.insert("columns".into(), json!(c)),
        None => b.remove("columns"),
    };
    b.insert("log_file".into(), json!(file));
    b.insert("log_pos".into(), json!(pos));
    if let Some(g) = gtid {
        b.insert("gtid".into(), json!(g));
    }
    b
}

fn commit(
    buf: &mut Vec<u8>,
    out: &OutputSender,
    streams: &mut [CdcStream],
    touched: &mut [bool],
    pos: &Position,
    gtid: Option<String>,
) -> Result<()> {
    if !touched.iter().any(|t| *t) {
        return Ok(());
    }
    out.send(std::mem::replace(buf, out.buffer()))?;
    for (i, s) in streams.iter_mut().enumerate() {
        if touched[i] {
            let b = bookmark_at(s, &pos.file, pos.pos, gtid.clone());
            s.bookmark = b.clone();
            out.bookmark(&s.plan.stream_id, b, None)?;
            touched[i] = false;
        }
    }
    Ok(())
}

fn finish(
    streams: &mut [CdcStream],
    out: &OutputSender,
    end: &BinlogCoords,
    gtid: Option<String>,
) -> Result<()> {
    let end_gtid = end.gtid.clone().or(gtid);
    for s in streams.iter_mut() {
        let behind = s.position().is_none_or(|p| {
            p.cmp(&Position {
                file: end.file.clone(),
                pos: end.position,
            }) == std::cmp::Ordering::Less
        });
        if behind {
            let b = bookmark_at(s, &end.file, end.position, end_gtid.clone());
            s.bookmark = b.clone();
            out.bookmark(&s.plan.stream_id, b, None)?;
        }
    }
    Ok(())
}

/// For each selected column, its index in the rows event (by name when the table map has
/// names, else by position in the table's current columns).
fn column_mapping(
    s: &CdcStream,
    tme: &mysql::binlog::events::TableMapEvent<'_>,
) -> Result<Vec<Option<usize>>> {
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
                    return Err(Error::runtime(format!(
                        "stream '{}': a schema change could not be followed and the binlog carries no column names: set binlog_row_metadata=FULL on the server, or re-snapshot the stream (remove its bookmark)",
                        s.plan.stream_id
                    )))
                }
            };
            if tme.columns_count() as usize != order.len() {
                return Err(Error::runtime(format!(
                    "stream '{}': the binlog has {} columns for the table where {} were expected (a schema change that was not followed?): set binlog_row_metadata=FULL on the server, or re-snapshot the stream",
                    s.plan.stream_id,
                    tme.columns_count(),
                    order.len()
                )));
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
                        return Err(Error::runtime(format!(
                            "stream '{}': column {} ('{}') is {:?} in the binlog but {:?} in the table now: the schema changed since these events were written and the binlog carries no column names. Set binlog_row_metadata=FULL on the server, or re-snapshot the stream (remove its bookmark)",
                            s.plan.stream_id,
                            i + 1,
                            name,
                            t,
                            kind
                        )));
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

/// The streams whose table a DDL statement may have changed (by name; a refresh of a table
/// that did not change is harmless).
fn ddl_targets(sql: &str, streams: &[CdcStream]) -> Vec<usize> {
    let lower = sql.to_ascii_lowercase();
    let ddl = [
        "alter table",
        "alter online table",
        "alter ignore table",
        "rename table",
        "drop table",
        "create table",
        "create or replace table",
    ]
    .iter()
    .any(|k| lower.starts_with(k));
    if !ddl {
        return vec![];
    }
    streams
        .iter()
        .enumerate()
        .filter(|(_, s)| lower.contains(&s.plan.table.to_ascii_lowercase()))
        .map(|(i, _)| i)
        .collect()
}

fn frame_of(s: &CdcStream, time_extracted: &str) -> RecordFrame {
    let mut names: Vec<&str> = s.plan.columns.iter().map(|c| c.name.as_str()).collect();
    names.push("_sdc_deleted_at");
    let version = s.bookmark.get("version").and_then(Value::as_u64);
    RecordFrame::new(&s.plan.stream_id, &names, version, time_extracted)
}

/// Decoding facts of a plan's columns, from the table's discovered columns.
pub fn decodings_for(plan: &StreamPlan, table: Option<&TableInfo>) -> Vec<ColumnDecoding> {
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

/// Re-reads a stream's table after a schema change; when its columns changed, rebuilds the
/// plan and sends a new SCHEMA (before any record that follows). Columns that were selected
/// stay selected while they exist; new columns join when every column was selected before.
fn refresh_schema(
    conn: &mut Conn,
    server: &ServerInfo,
    types: &TypeOptions,
    s: &mut CdcStream,
    out: &OutputSender,
) -> Result<bool> {
    let tables = discover_tables(
        conn,
        server.flavor,
        std::slice::from_ref(&s.plan.database),
        types,
    )?;
    let Some(table) = tables.into_iter().find(|t| t.name == s.plan.table) else {
        return Err(Error::runtime(format!(
            "stream '{}': its table was dropped or renamed away in the binlog: re-snapshot the stream",
            s.plan.stream_id
        )));
    };
    let names: Vec<String> = table.columns.iter().map(|c| c.name.clone()).collect();
    let same_kinds = table.columns.iter().all(|c| {
        s.plan
            .columns
            .iter()
            .all(|p| p.name != c.name || p.kind == c.kind)
    });
    if names == s.table_columns && same_kinds {
        return Ok(false);
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
    let plan = crate::sync::plan::rebuild(&table, &selected, s.plan.key_properties.clone(), types)?;
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
    Ok(true)
}

fn dump_error(e: mysql::Error, start: &Position) -> Error {
    match &e {
        mysql::Error::MySqlError(se) if se.code == 1236 => Error::runtime(format!(
            "binlog: the server cannot serve {}:{} ({}): the file was probably purged. Re-snapshot the LOG_BASED streams: remove their bookmarks from the state and run again",
            start.file, start.pos, se.message
        )),
        mysql::Error::MySqlError(se) if matches!(se.code, 1227 | 1045 | 1044) => Error::runtime(format!(
            "binlog: reading the binary log needs the REPLICATION SLAVE (and REPLICATION CLIENT) privilege: {}",
            se.message
        )),
        _ => Error::mysql("binlog: reading the binary log", e),
    }
}
