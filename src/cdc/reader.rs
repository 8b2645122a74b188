//! The binlog reader: one replication connection per run serves every LOG_BASED stream, from
//! the oldest stream bookmark up to the server's position at the start of the run.
//!
//! Promises:
//! - Inserts emit the after image; deletes the before image with `_sdc_deleted_at` (the event's
//!   time, UTC); updates the after image, preceded by the before image with `_sdc_deleted_at`
//!   when the update changed the stream's key (so no row stays behind under its old key).
//! - Rows are mapped with the table map event that precedes them (by column name when the
//!   binlog carries names, else by position against the column order followed through DDL),
//!   never by a cached table id alone.
//! - A DDL statement touches exactly the streams whose tables it changes (`ddl.rs`), and only
//!   when the stream's bookmark does not already cover it. TRUNCATE and DROP start a new table
//!   version with an ACTIVATE_VERSION at that point of the binlog; a table that can no longer be
//!   followed (replaced, rows rewritten without row events, columns that cannot be mapped) is
//!   marked for a re-snapshot (`auto_resnapshot`, else the run stops with the reason).
//! - Bookmarks (`log_file`, `log_pos`, the GTID position when known, `version`, `columns`)
//!   advance only at transaction boundaries (XID or COMMIT, or after a statement outside a
//!   transaction), after every message of the transaction was sent, and every LOG_BASED
//!   stream's bookmark reaches the end position even when its table was idle.
//! - Anything that cannot be decoded exactly (compressed transactions, partial JSON) stops the
//!   run with a clear error; nothing is skipped silently.

use std::collections::HashMap;

use mysql::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql::binlog::row::BinlogRow;
use mysql::binlog::EventType;
use mysql::prelude::Queryable;
use mysql::{BinlogStream, Conn};

use super::ddl::{self, Applied, Change, Target};
use super::dump::{dump_error, open_dump, preflight, refused_event, server_id, GtidTracker};
use super::mariadb;
use super::stream::{column_mapping, refresh_schema, send_schema, Refresh};
pub use super::stream::{CdcStream, ModelState, Position};
use super::values::text_bytes;
use crate::config::TypeOptions;
use crate::encode::encode_cell;
use crate::error::{Error, MysqlContext, Result};
use crate::singer::messages::activate_version_message;
use crate::source::connect::{Connector, ServerInfo};
use crate::source::snapshot::{read_coords, BinlogCoords};
use crate::sync::output::{OutputSender, BUFFER_BYTES};

/// Settings of a binlog read.
pub struct CdcOptions<'a> {
    /// Replica server id (random when None).
    pub server_id: Option<u32>,
    /// Start the dump from the GTID position.
    pub use_gtid: bool,
    /// Reconnects after a dropped replication connection.
    pub reconnect_limit: u32,
    /// Mark tables that can no longer be followed for a re-snapshot instead of failing.
    pub auto_resnapshot: bool,
    /// Type mapping options (for schema refreshes).
    pub types: &'a TypeOptions,
    /// `time_extracted` of every record.
    pub time_extracted: &'a str,
}

/// Reads the binlog for `streams` up to the position the server had when this function
/// started, writing RECORDs and bookmarks to `out`. Streams that must be re-snapshotted come
/// back with `resnapshot` set.
pub fn run(
    connector: &Connector,
    server: &ServerInfo,
    opts: &CdcOptions<'_>,
    streams: &mut [CdcStream],
    out: &OutputSender,
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
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        });
    let sid = server_id(opts.server_id, &mut conn)?;
    let facts = ServerFacts::read(&mut conn)?;
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
        std::cmp::Ordering::Equal => return finish(streams, out, &end, None),
        std::cmp::Ordering::Greater => {
            return Err(Error::runtime(format!(
                "binlog: the bookmark {}:{} is ahead of the server's binary log (it ends at {}:{}): is this another server, or was the binlog reset? Re-snapshot the LOG_BASED streams: remove their bookmarks from the state",
                start.file, start.pos, end_pos.file, end_pos.pos
            )))
        }
        std::cmp::Ordering::Less => {}
    }
    let gtid_from = opts.use_gtid.then_some(start_gtid.as_deref()).flatten();
    let binlog = open_dump(conn, server, sid, &start, gtid_from)?;
    let mut session = Session {
        connector,
        server,
        opts,
        out,
        by_table: streams
            .iter()
            .enumerate()
            .map(|(i, s)| (facts.table_key(&s.plan.database, &s.plan.table), i))
            .collect(),
        streams,
        facts,
        schema_conn: None,
        gtid: GtidTracker::start(server.flavor, start_gtid.as_deref())?,
        file: start.file.clone(),
        touched: Vec::new(),
        in_txn: false,
        buf: out.buffer(),
        rows_total: 0,
        last_commit: None,
        last_seen: None,
        seen_fde: false,
    };
    session.touched = vec![false; session.streams.len()];
    session.read(binlog, &start, &end_pos, sid)?;
    let (rows_total, gtid) = (session.rows_total, session.gtid.text());
    session.out.send(std::mem::take(&mut session.buf))?;
    drop(session);
    for s in streams.iter() {
        for (c, w) in s.plan.columns.iter().zip(&s.warnings) {
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
    finish(streams, out, &end, gtid)
}

/// What the reader needs to know of the server's settings.
struct ServerFacts {
    /// The server logs column names in table maps now (`binlog_row_metadata=FULL`).
    names_logged: bool,
    /// Table names are compared without case (`lower_case_table_names` > 0).
    fold_case: bool,
    /// Bytes of the checksum the dump's opening fake rotate event still carries.
    fake_rotate_footer: usize,
}

impl ServerFacts {
    fn read(conn: &mut Conn) -> Result<ServerFacts> {
        // Older servers have no binlog_row_metadata: they never log names.
        let metadata: Option<String> = conn
            .query_first("SELECT @@GLOBAL.binlog_row_metadata")
            .ok()
            .flatten();
        let lower: Option<u32> = conn
            .query_first("SELECT @@lower_case_table_names")
            .context("binlog: reading lower_case_table_names")?;
        // The fake rotate event that opens the dump arrives before the format description
        // event, so the driver cannot know it carries a checksum: we do.
        let checksum: Option<String> = conn
            .query_first("SELECT @@GLOBAL.binlog_checksum")
            .context("binlog: reading binlog_checksum")?;
        Ok(ServerFacts {
            names_logged: metadata.is_some_and(|m| m.eq_ignore_ascii_case("FULL")),
            fold_case: lower.unwrap_or(0) > 0,
            fake_rotate_footer: if checksum.is_some_and(|c| !c.eq_ignore_ascii_case("NONE")) {
                4
            } else {
                0
            },
        })
    }

    fn table_key(&self, db: &str, table: &str) -> (String, String) {
        if self.fold_case {
            (db.to_lowercase(), table.to_lowercase())
        } else {
            (db.to_string(), table.to_string())
        }
    }
}

/// The state of one binlog read.
struct Session<'s, 'o> {
    connector: &'s Connector,
    server: &'s ServerInfo,
    opts: &'s CdcOptions<'o>,
    out: &'s OutputSender,
    streams: &'s mut [CdcStream],
    by_table: HashMap<(String, String), usize>,
    facts: ServerFacts,
    /// A second connection for schema re-reads (opened at the first schema change).
    schema_conn: Option<Conn>,
    gtid: GtidTracker,
    /// The binlog file being read.
    file: String,
    /// Streams with messages (or a new bookmark) since the last transaction boundary.
    touched: Vec<bool>,
    in_txn: bool,
    /// Messages of the current transaction not yet handed to the writer.
    buf: Vec<u8>,
    rows_total: u64,
    last_commit: Option<Position>,
    last_seen: Option<Position>,
    seen_fde: bool,
}

/// Which image(s) a rows event carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowsKind {
    Insert,
    Update,
    Delete,
}

impl Session<'_, '_> {
    /// Reads events up to `end`, reconnecting at the last transaction boundary when the
    /// replication connection drops.
    fn read(
        &mut self,
        mut binlog: BinlogStream,
        start: &Position,
        end: &Position,
        sid: u32,
    ) -> Result<()> {
        let mut reconnects = 0u32;
        while let Some(event) = binlog.next() {
            if let Some(sig) = crate::interrupt::requested() {
                // Records of an unfinished transaction stay unsent; the bookmark is at the
                // last commit.
                return Err(Error::Interrupted(sig));
            }
            let event = match event {
                Ok(ev) => ev,
                Err(e)
                    if crate::sync::rows::connection_lost(&e)
                        && reconnects < self.opts.reconnect_limit.max(1) =>
                {
                    reconnects += 1;
                    binlog = self.reconnect(e, start, sid)?;
                    continue;
                }
                Err(e) => return Err(dump_error(e, start)),
            };
            let pos = self.on_event(&event, &binlog)?;
            if !self.in_txn && pos.cmp(end) != std::cmp::Ordering::Less {
                break;
            }
        }
        // Only a stream read through to the end position, at a transaction boundary, may move
        // the bookmarks there; otherwise the rows of an unfinished transaction are not sent.
        let complete = !self.in_txn
            && self
                .last_seen
                .as_ref()
                .is_some_and(|p| p.cmp(end) != std::cmp::Ordering::Less);
        if complete {
            return Ok(());
        }
        Err(Error::runtime(format!(
            "binlog: the server ended the stream at {} before {}:{}{}; the bookmarks stay at the last complete transaction: run again",
            self.last_seen
                .as_ref()
                .map_or("its start".to_string(), |p| format!("{}:{}", p.file, p.pos)),
            end.file,
            end.pos,
            if self.in_txn { ", inside a transaction" } else { "" }
        )))
    }

    /// Opens a new dump at the last transaction boundary. The unfinished transaction's records
    /// are dropped (any already flushed come again: duplicates, never a gap).
    fn reconnect(&mut self, e: mysql::Error, start: &Position, sid: u32) -> Result<BinlogStream> {
        let from = self.last_commit.clone().unwrap_or_else(|| start.clone());
        log::warn!(
            "binlog: the replication connection dropped ({}); reconnecting to resume at {}:{}",
            Error::mysql("", e).to_string().trim_start_matches(": "),
            from.file,
            from.pos
        );
        self.buf.clear();
        self.touched.iter_mut().for_each(|t| *t = false);
        self.in_txn = false;
        self.seen_fde = false;
        self.file = from.file.clone();
        let conn = self.connector.connect("binlog (reconnect)")?;
        open_dump(conn, self.server, sid, &from, None)
    }

    /// Handles one event; returns its end position.
    fn on_event(&mut self, event: &Event, binlog: &BinlogStream) -> Result<Position> {
        let header = event.header();
        let pos = Position {
            file: self.file.clone(),
            pos: header.log_pos() as u64,
        };
        if pos.pos > 0 {
            self.last_seen = Some(pos.clone());
        }
        let failed = |e: String| Error::runtime(format!("binlog {}:{}: {e}", pos.file, pos.pos));
        match header.event_type_raw() {
            mariadb::GTID => {
                let g = mariadb::gtid_event(event.data(), header.server_id()).map_err(failed)?;
                if let GtidTracker::Mariadb(p) = &mut self.gtid {
                    p.update(g.gtid);
                }
                self.in_txn = g.flags & mariadb::FL_STANDALONE == 0;
                return Ok(pos);
            }
            mariadb::GTID_LIST
            | mariadb::BINLOG_CHECKPOINT
            | mariadb::ANNOTATE_ROWS
            | mariadb::START_ENCRYPTION => return Ok(pos),
            raw => {
                if let Some(why) = refused_event(raw) {
                    return Err(failed(why.to_string()));
                }
            }
        }
        let Ok(event_type) = header.event_type() else {
            return Ok(pos);
        };
        match event_type {
            EventType::GTID_EVENT | EventType::GTID_TAGGED_LOG_EVENT => {
                if let (GtidTracker::Mysql(set), Ok(Some(EventData::GtidEvent(g)))) =
                    (&mut self.gtid, event.read_data())
                {
                    let tag = g.tag().map(|t| t.as_str().to_string()).unwrap_or_default();
                    set.add(&super::values::uuid_text(&g.sid()), &tag, g.gno());
                }
            }
            EventType::FORMAT_DESCRIPTION_EVENT => self.seen_fde = true,
            EventType::ROTATE_EVENT => {
                // body: position (8 bytes) then the file name (then a checksum the driver
                // has not stripped when this is the dump's opening fake rotate).
                let data = event.data();
                let footer = if self.seen_fde {
                    0
                } else {
                    self.facts.fake_rotate_footer
                };
                let name = data
                    .get(8..data.len().saturating_sub(footer))
                    .ok_or_else(|| Error::runtime("binlog: truncated rotate event"))?;
                self.file = String::from_utf8_lossy(name).into_owned();
            }
            EventType::QUERY_EVENT => {
                if let Ok(Some(EventData::QueryEvent(q))) = event.read_data() {
                    self.on_query(&q.query(), &q.schema(), &pos)?;
                }
            }
            EventType::XID_EVENT => self.commit(&pos)?,
            EventType::WRITE_ROWS_EVENT
            | EventType::UPDATE_ROWS_EVENT
            | EventType::DELETE_ROWS_EVENT
            | EventType::WRITE_ROWS_EVENT_V1
            | EventType::UPDATE_ROWS_EVENT_V1
            | EventType::DELETE_ROWS_EVENT_V1
            | EventType::PARTIAL_UPDATE_ROWS_EVENT => {
                let Ok(Some(EventData::RowsEvent(rows))) = event.read_data() else {
                    return Err(failed("unreadable rows event".into()));
                };
                let Some(tme) = binlog.get_tme(rows.table_id()) else {
                    return Err(failed("rows event without its table map".into()));
                };
                self.on_rows(&rows, tme, &pos, header.timestamp())?;
            }
            _ => {}
        }
        Ok(pos)
    }

    /// A statement: a transaction boundary, or DDL that may change selected tables.
    fn on_query(&mut self, sql: &str, default_db: &str, pos: &Position) -> Result<()> {
        let trimmed = sql.trim();
        if trimmed.eq_ignore_ascii_case("BEGIN") {
            self.in_txn = true;
            return Ok(());
        }
        // A logged ROLLBACK ends a group whose (non-transactional) changes did happen.
        if trimmed.eq_ignore_ascii_case("COMMIT") || trimmed.eq_ignore_ascii_case("ROLLBACK") {
            return self.commit(pos);
        }
        for (target, change) in ddl::changes(trimmed, default_db) {
            for idx in self.streams_of(&target) {
                if !self.streams[idx].covers(pos) {
                    self.apply_change(idx, change.clone(), trimmed, pos)?;
                }
            }
        }
        if !self.in_txn {
            self.commit(pos)?;
        }
        Ok(())
    }

    /// The streams whose table `target` names.
    fn streams_of(&self, target: &Target) -> Vec<usize> {
        let fold = self.facts.fold_case;
        (0..self.streams.len())
            .filter(|&i| {
                let p = &self.streams[i].plan;
                target.is(&p.database, &p.table, fold)
            })
            .collect()
    }

    /// What a DDL statement does to one stream.
    fn apply_change(
        &mut self,
        idx: usize,
        change: Change,
        sql: &str,
        pos: &Position,
    ) -> Result<()> {
        let s = &mut self.streams[idx];
        if s.resnapshot.is_some() {
            return Ok(()); // it is re-read as a whole anyway
        }
        let what: String = sql.chars().take(120).collect();
        match change {
            Change::Truncated => self.new_version(idx, "TRUNCATE", pos),
            Change::Dropped => {
                s.dropped = true;
                log::warn!(
                    "stream '{}': its table was dropped or renamed away at binlog {}:{} ({what})",
                    s.plan.stream_id,
                    pos.file,
                    pos.pos
                );
                self.new_version(idx, "table dropped", pos)
            }
            Change::Replaced { if_not_exists } if if_not_exists && !s.dropped => Ok(()),
            Change::Replaced { .. } => {
                let why = format!("the table was replaced by another ({what})");
                self.resnapshot(idx, why, false, pos)
            }
            Change::RowsRewritten => {
                let why = format!("rows changed without row events ({what})");
                self.resnapshot(idx, why, false, pos)
            }
            Change::Altered(clauses) => self.on_alter(idx, &clauses, &what, pos),
        }
    }

    /// ALTER TABLE: follow the column order, re-read the table's columns, send a new SCHEMA
    /// when they changed.
    fn on_alter(
        &mut self,
        idx: usize,
        clauses: &[Vec<String>],
        what: &str,
        pos: &Position,
    ) -> Result<()> {
        let s = &mut self.streams[idx];
        if let ModelState::Known(model) = &mut s.model {
            if ddl::apply(model, clauses) == Applied::Unknown {
                log::warn!(
                    "stream '{}': cannot follow the column order through: {what}",
                    s.plan.stream_id
                );
                s.model = ModelState::Lost;
            }
        }
        if s.model == ModelState::Lost && !self.facts.names_logged {
            let why = format!(
                "a schema change could not be followed without column names in the binlog ({what})"
            );
            return self.resnapshot(idx, why, true, pos);
        }
        // Messages so far go first: the new SCHEMA must precede only the records after it.
        self.flush()?;
        let conn = match self.schema_conn.as_mut() {
            Some(c) => c,
            None => self
                .schema_conn
                .insert(self.connector.connect("binlog schema changes")?),
        };
        let s = &mut self.streams[idx];
        if refresh_schema(conn, self.server, self.opts.types, s, self.out)? == Refresh::Changed {
            s.reframe(self.opts.time_extracted);
            log::info!(
                "stream '{}': schema change at binlog {}:{} ({}): new SCHEMA sent",
                s.plan.stream_id,
                pos.file,
                pos.pos,
                what.chars().take(80).collect::<String>()
            );
        }
        Ok(())
    }

    /// Starts a new table version at this point of the binlog: an ACTIVATE_VERSION (targets
    /// remove every row of older versions), then records with the new version.
    fn new_version(&mut self, idx: usize, why: &str, pos: &Position) -> Result<()> {
        let s = &mut self.streams[idx];
        let version = next_version(s.version);
        s.version = Some(version);
        s.reframe(self.opts.time_extracted);
        self.buf
            .extend_from_slice(&activate_version_message(&s.plan.stream_id, version));
        self.touched[idx] = true;
        log::info!(
            "stream '{}': {why} at binlog {}:{}: new table version {version} (ACTIVATE_VERSION: rows of older versions are removed downstream)",
            s.plan.stream_id,
            pos.file,
            pos.pos
        );
        Ok(())
    }

    /// Marks a stream for a re-snapshot (its events are skipped from here on), or fails when
    /// `auto_resnapshot` is off. `names_help`: column names in the binlog would have avoided it.
    fn resnapshot(
        &mut self,
        idx: usize,
        why: String,
        names_help: bool,
        pos: &Position,
    ) -> Result<()> {
        let s = &mut self.streams[idx];
        if !self.opts.auto_resnapshot {
            return Err(Error::runtime(format!(
                "stream '{}': {why} at binlog {}:{}: its changes could not be followed from the binlog. Re-snapshot the stream (remove its bookmark from the state), or set auto_resnapshot to true to let the tap re-read it as a new table version{}",
                s.plan.stream_id,
                pos.file,
                pos.pos,
                if names_help {
                    "; set binlog_row_metadata=FULL on the server so schema changes are followed by column name"
                } else {
                    ""
                }
            )));
        }
        log::warn!(
            "stream '{}': {why} at binlog {}:{}: its table is re-read through a fresh snapshot as a new table version at the end of this run (auto_resnapshot)",
            s.plan.stream_id,
            pos.file,
            pos.pos
        );
        s.resnapshot = Some(why);
        self.touched[idx] = true;
        Ok(())
    }

    /// A rows event: RECORDs for the stream of its table.
    fn on_rows(
        &mut self,
        rows: &RowsEventData<'_>,
        tme: &TableMapEvent<'_>,
        pos: &Position,
        timestamp: u32,
    ) -> Result<()> {
        let key = self
            .facts
            .table_key(&tme.database_name(), &tme.table_name());
        let Some(&idx) = self.by_table.get(&key) else {
            return Ok(());
        };
        let s = &self.streams[idx];
        if s.covers(pos) || s.resnapshot.is_some() {
            return Ok(()); // already sent, or re-read as a whole
        }
        let mapping = match column_mapping(s, tme) {
            Ok(m) => m,
            Err(why) => return self.resnapshot(idx, why, true, pos),
        };
        let kind = match rows {
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
                RowsKind::Delete
            }
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => {
                RowsKind::Insert
            }
            _ => RowsKind::Update,
        };
        // The time of deletes (and of the old key of an update that changed it).
        let when = match kind {
            RowsKind::Insert => String::new(),
            _ => super::stream::commit_time(timestamp),
        };
        for row in rows.rows(tme) {
            let (before, after) =
                row.map_err(|e| Error::runtime(format!("binlog {}:{}: {e}", pos.file, pos.pos)))?;
            match (kind, before, after) {
                (RowsKind::Delete, Some(b), _) => {
                    self.write(idx, &mapping, &b, Some(&when), pos)?
                }
                (RowsKind::Update, Some(b), Some(a)) => {
                    // A new key: the row under the old key is gone.
                    if self.key_changed(idx, &mapping, &b, &a, pos)? {
                        self.write(idx, &mapping, &b, Some(&when), pos)?;
                    }
                    self.write(idx, &mapping, &a, None, pos)?;
                }
                (RowsKind::Insert | RowsKind::Update, _, Some(a)) => {
                    self.write(idx, &mapping, &a, None, pos)?
                }
                _ => {}
            }
        }
        self.touched[idx] = true;
        Ok(())
    }

    /// Whether an update changed the stream's key (the bytes the tap would emit differ).
    fn key_changed(
        &self,
        idx: usize,
        mapping: &[Option<usize>],
        before: &BinlogRow,
        after: &BinlogRow,
        pos: &Position,
    ) -> Result<bool> {
        let s = &self.streams[idx];
        for &ci in &s.key_columns {
            let Some(ti) = mapping[ci] else { continue };
            let dec = &s.decodings[ci];
            let text = |row: &BinlogRow| match row.as_ref(ti) {
                Some(v) => text_bytes(dec, v).map_err(|e| value_error(s, ci, pos, e)),
                None => Ok(None),
            };
            if text(before)? != text(after)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Appends one RECORD of `image` (a delete when `deleted_at` is set).
    fn write(
        &mut self,
        idx: usize,
        mapping: &[Option<usize>],
        image: &BinlogRow,
        deleted_at: Option<&str>,
        pos: &Position,
    ) -> Result<()> {
        let s = &mut self.streams[idx];
        let buf = &mut self.buf;
        buf.extend_from_slice(s.frame.prefix());
        for (ci, dec) in s.decodings.iter().enumerate() {
            buf.extend_from_slice(s.frame.key(ci));
            let bytes = match mapping[ci].and_then(|ti| image.as_ref(ti)) {
                Some(v) => text_bytes(dec, v).map_err(|e| value_error(s, ci, pos, e))?,
                None => None,
            };
            encode_cell(
                s.plan.columns[ci].encoder,
                bytes.as_deref(),
                buf,
                &mut s.warnings[ci],
            );
        }
        buf.extend_from_slice(s.frame.key(s.decodings.len()));
        match deleted_at {
            Some(t) => crate::encode::json::write_str(buf, t),
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(s.frame.suffix());
        self.rows_total += 1;
        crate::sync::rows::invalid_text(&s.plan, &s.warnings)?;
        if self.buf.len() >= BUFFER_BYTES {
            self.flush()?;
        }
        Ok(())
    }

    /// Hands the messages so far to the writer.
    fn flush(&mut self) -> Result<()> {
        self.out
            .send(std::mem::replace(&mut self.buf, self.out.buffer()))
    }

    /// A transaction boundary at `pos`: the messages of the transaction, then the bookmarks of
    /// the streams it touched.
    fn commit(&mut self, pos: &Position) -> Result<()> {
        self.in_txn = false;
        self.last_commit = Some(pos.clone());
        if !self.touched.iter().any(|t| *t) {
            return Ok(());
        }
        self.flush()?;
        let gtid = self.gtid.text();
        for (s, touched) in self.streams.iter_mut().zip(self.touched.iter_mut()) {
            if *touched {
                let b = s.bookmark_at(&pos.file, pos.pos, gtid.clone());
                s.bookmark = b.clone();
                self.out.bookmark(&s.plan.stream_id, b, None)?;
                *touched = false;
            }
        }
        Ok(())
    }
}

fn value_error(s: &CdcStream, ci: usize, pos: &Position, e: String) -> Error {
    Error::runtime(format!(
        "stream '{}' column '{}' at binlog {}:{}: {e}",
        s.plan.stream_id, s.plan.columns[ci].name, pos.file, pos.pos
    ))
}

/// A table version after `old`: milliseconds since the epoch, always greater than `old`.
pub fn next_version(old: Option<u64>) -> u64 {
    crate::sync::full_table::now_millis().max(old.map_or(0, |v| v + 1))
}

/// Moves every stream that is behind to the end position (streams marked for a re-snapshot
/// keep the bookmark that asks for it).
fn finish(
    streams: &mut [CdcStream],
    out: &OutputSender,
    end: &BinlogCoords,
    gtid: Option<String>,
) -> Result<()> {
    let end_gtid = end.gtid.clone().or(gtid);
    let end_pos = Position {
        file: end.file.clone(),
        pos: end.position,
    };
    for s in streams.iter_mut().filter(|s| s.resnapshot.is_none()) {
        let behind = s
            .position()
            .is_none_or(|p| p.cmp(&end_pos) == std::cmp::Ordering::Less);
        if behind {
            let b = s.bookmark_at(&end.file, end.position, end_gtid.clone());
            s.bookmark = b.clone();
            out.bookmark(&s.plan.stream_id, b, None)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_always_grow() {
        let now = crate::sync::full_table::now_millis();
        assert!(next_version(None) >= now);
        assert_eq!(next_version(Some(u64::MAX / 2)), u64::MAX / 2 + 1);
        assert!(next_version(Some(1)) >= now);
    }
}
