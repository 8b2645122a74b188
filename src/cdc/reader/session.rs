//! One binlog read as a type: the dump and its reconnects, transaction boundaries, DDL,
//! schema refreshes and row events, each in a method of its own.

use std::collections::HashMap;

use mysql::binlog::events::{Event, EventData};
use mysql::binlog::EventType;
use mysql::{BinlogStream, Conn};

use super::feed::EventFeed;
use super::positions::send_bookmarks;
use super::rows::{RowBuffers, TableMaps};
use super::{CdcOptions, ServerFacts};
use crate::cdc::ddl::{self, Applied, Change, Target};
use crate::cdc::dump::{dump_error, open_dump, refused_event, DumpFrom};
use crate::cdc::gtid::{GtidState, TxnGtid};
use crate::cdc::mariadb;
use crate::cdc::stream::{refresh_schema, Refresh};
use crate::cdc::stream::{CdcStream, ModelState, Position};
use crate::error::{Error, Result};
use crate::singer::messages::activate_version_message;
use crate::sink::record::OutputSender;
use crate::source::connect::{Connector, ServerInfo};

/// The state of one binlog read.
pub(super) struct Session<'s, 'o> {
    pub(super) connector: &'s Connector,
    pub(super) server: &'s ServerInfo,
    pub(super) opts: &'s CdcOptions<'o>,
    pub(super) out: &'s OutputSender,
    pub(super) streams: &'s mut [CdcStream],
    pub(super) by_table: HashMap<(String, String), usize>,
    pub(super) facts: ServerFacts,
    /// A second connection for schema re-reads (opened at the first schema change).
    pub(super) schema_conn: Option<Conn>,
    /// The GTID position of the last transaction boundary.
    pub(super) gtid: GtidState,
    /// The GTID of the transaction being read (added to `gtid` at its end).
    pub(super) current: Option<TxnGtid>,
    /// Reading by GTID: each stream's GTID position at the start of the run (what it has).
    pub(super) stream_gtids: Option<Vec<GtidState>>,
    /// The binlog file being read.
    pub(super) file: String,
    /// Streams with messages (or a new bookmark) since the last transaction boundary.
    pub(super) touched: Vec<bool>,
    pub(super) in_txn: bool,
    /// Messages of the current transaction not yet handed to the writer.
    pub(super) buf: Vec<u8>,
    pub(super) rows_total: u64,
    pub(super) last_commit: Option<Position>,
    pub(super) last_seen: Option<Position>,
    pub(super) seen_fde: bool,
    /// The table maps seen, resolved for the row decoder.
    pub(super) tables: TableMaps,
    /// Buffers the row decoder reuses from row to row.
    pub(super) rowbuf: RowBuffers,
}

impl Session<'_, '_> {
    /// Reads events up to `end`, reconnecting at the last transaction boundary when the
    /// replication connection drops.
    pub(super) fn read(
        &mut self,
        binlog: BinlogStream,
        start: &DumpFrom,
        end: &Position,
        sid: u32,
    ) -> Result<()> {
        let mut reconnects = 0u32;
        let mut feed = EventFeed::start(binlog)?;
        while let Some(event) = feed.next() {
            if let Some(sig) = crate::interrupt::requested() {
                // Records of an unfinished transaction stay unsent; the bookmark is at the
                // last commit.
                return Err(Error::Interrupted(sig));
            }
            let event = match event {
                Ok(ev) => ev,
                Err(e)
                    if crate::source::errors::connection_lost(&e)
                        && reconnects < self.opts.reconnect_limit.max(1) =>
                {
                    reconnects += 1;
                    feed = EventFeed::start(self.reconnect(e, start, sid)?)?;
                    continue;
                }
                Err(e) => return Err(dump_error(e, start)),
            };
            let pos = self.on_event(&event)?;
            // Events at position 0 (the dump's opening fake events) are not in the log.
            if !self.in_txn && pos.pos > 0 && pos.cmp(end) != std::cmp::Ordering::Less {
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

    /// Opens a new dump at the last transaction boundary (its GTID position when reading by
    /// GTID). The unfinished transaction's records are dropped (any already flushed come again:
    /// duplicates, never a gap).
    fn reconnect(&mut self, e: mysql::Error, start: &DumpFrom, sid: u32) -> Result<BinlogStream> {
        let from = match (start, &self.last_commit) {
            (DumpFrom::Gtid(_), _) => DumpFrom::Gtid(self.gtid.clone()),
            (DumpFrom::File(_), Some(p)) | (DumpFrom::File(p), None) => DumpFrom::File(p.clone()),
        };
        log::warn!(
            "binlog: the replication connection dropped ({}); reconnecting to resume at {from}",
            Error::mysql("", e).to_string().trim_start_matches(": "),
        );
        self.buf.clear();
        self.touched.iter_mut().for_each(|t| *t = false);
        self.in_txn = false;
        self.seen_fde = false;
        self.current = None;
        self.tables.schema_changed();
        self.file = match &from {
            DumpFrom::File(p) => p.file.clone(),
            DumpFrom::Gtid(_) => String::new(),
        };
        let conn = self.connector.connect("binlog (reconnect)")?;
        open_dump(conn, self.server, sid, &from)
    }

    /// A transaction's GTID event.
    fn on_gtid(&mut self, t: TxnGtid) {
        // A transaction that ended without a boundary the reader knows still passed.
        if let Some(prev) = self.current.replace(t) {
            self.gtid.add(&prev);
        }
    }

    /// Whether a stream already has the events at `pos`: by its GTID position when reading by
    /// GTID (file positions may be another server's), else by its bookmark's file position.
    pub(super) fn covered(&self, idx: usize, pos: &Position) -> bool {
        match &self.stream_gtids {
            Some(starts) => self
                .current
                .as_ref()
                .is_some_and(|t| starts[idx].contains(t)),
            None => self.streams[idx].covers(pos),
        }
    }

    /// The GTID position a stream's bookmark gets at the current boundary: reading by GTID,
    /// what it had plus what was read (the read may start before its own position).
    fn gtid_for(&self, idx: usize) -> Option<String> {
        match &self.stream_gtids {
            Some(starts) => Some(starts[idx].union(&self.gtid).to_string()),
            None => self.gtid.text(),
        }
    }

    /// Handles one event; returns its end position.
    fn on_event(&mut self, event: &Event) -> Result<Position> {
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
                self.on_gtid(TxnGtid::Mariadb(g.gtid));
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
                if let Ok(Some(EventData::GtidEvent(g))) = event.read_data() {
                    self.on_gtid(TxnGtid::Mysql {
                        uuid: crate::cdc::text::uuid_text(&g.sid()),
                        tag: g.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                        gno: g.gno(),
                    });
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
                self.on_rows(&rows, &pos, header.timestamp())?;
            }
            EventType::TABLE_MAP_EVENT => self.tables.on_table_map(event).map_err(failed)?,
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
                if !self.covered(idx, pos) {
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
        // The stream's columns may change: table maps are mapped to it again.
        self.tables.schema_changed();
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
        let version = crate::state::next_version(s.version, crate::singer::time::now_millis());
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
    pub(super) fn resnapshot(
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

    /// Hands the messages so far to the writer.
    pub(super) fn flush(&mut self) -> Result<()> {
        self.out
            .send(std::mem::replace(&mut self.buf, self.out.buffer()))
    }

    /// A transaction boundary at `pos`: the messages of the transaction, then the bookmarks of
    /// the streams it touched.
    fn commit(&mut self, pos: &Position) -> Result<()> {
        self.in_txn = false;
        self.last_commit = Some(pos.clone());
        if let Some(t) = self.current.take() {
            self.gtid.add(&t);
        }
        if !self.touched.iter().any(|t| *t) {
            return Ok(());
        }
        self.flush()?;
        let mut moved = Vec::new();
        for idx in 0..self.streams.len() {
            if std::mem::take(&mut self.touched[idx]) {
                let gtid = self.gtid_for(idx);
                let s = &mut self.streams[idx];
                let b = s.bookmark_at(&pos.file, pos.pos, gtid);
                s.bookmark = b.clone();
                moved.push((s.plan.stream_id.clone(), b));
            }
        }
        send_bookmarks(self.out, moved)
    }
}
