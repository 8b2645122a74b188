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
//! - With `use_gtid` the GTID is the position: the read starts from the transactions every
//!   stream has, a transaction is skipped for a stream exactly when the stream's own GTID
//!   position includes it, and file names and positions are only hints (after a failover they
//!   are another server's). A bookmark without a GTID is refused once the server has GTIDs.
//! - Anything that cannot be decoded exactly (compressed transactions, partial JSON) stops the
//!   run with a clear error; nothing is skipped silently.

use std::collections::HashMap;

use mysql::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql::binlog::row::BinlogRow;
use mysql::binlog::EventType;
use mysql::prelude::Queryable;
use mysql::{BinlogStream, Conn};

use super::ddl::{self, Applied, Change, Target};
use super::dump::{
    bookmark_gtid, check_gtid_mode, dump_error, open_dump, preflight, refused_event, server_id,
    DumpFrom,
};
use super::gtid::{GtidState, TxnGtid};
use super::mariadb;
use super::stream::{column_mapping, refresh_schema, send_schema, Refresh};
pub(crate) use super::stream::{CdcStream, ModelState, Position};
use super::values::text_bytes;
use crate::config::{Flavor, TypeOptions};
use crate::encode::encode_cell;
use crate::error::{Error, MysqlContext, Result};
use crate::singer::messages::activate_version_message;
use crate::sink::record::{OutputSender, StateLine, BUFFER_BYTES};
use crate::source::connect::{Connector, ServerInfo};
use crate::source::snapshot::{read_coords, BinlogCoords};
use crate::state::Bookmark;

/// Settings of a binlog read.
pub(crate) struct CdcOptions<'a> {
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
pub(crate) fn run(
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
    if opts.use_gtid && server.flavor == Flavor::Mysql {
        check_gtid_mode(&mut conn)?;
    }
    let end = read_coords(&mut conn, server)?.ok_or_else(|| {
        Error::runtime("LOG_BASED: the server reports no binlog position (SHOW MASTER STATUS needs REPLICATION CLIENT / BINLOG MONITOR)")
    })?;
    let end_pos = Position {
        file: end.file.clone(),
        pos: end.position,
    };
    let start = plan_start(server.flavor, opts.use_gtid, streams, &end)?;
    let sid = server_id(opts.server_id, &mut conn)?;
    let facts = ServerFacts::read(&mut conn)?;
    log::info!(
        "binlog: reading from {} up to {}:{} for {} stream(s) as replica server_id {sid}",
        start.from(),
        end_pos.file,
        end_pos.pos,
        streams.len()
    );
    for s in streams.iter() {
        send_schema(s, out)?;
    }
    if start.at_end(&end_pos)? {
        return start.finish(streams, out, &end, None);
    }
    let binlog = open_dump(conn, server, sid, &start.from())?;
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
        gtid: start.tracker(server.flavor)?,
        current: None,
        stream_gtids: start.stream_gtids(),
        file: start.file(),
        touched: Vec::new(),
        in_txn: false,
        buf: out.buffer(),
        rows_total: 0,
        last_commit: None,
        last_seen: None,
        seen_fde: false,
    };
    session.touched = vec![false; session.streams.len()];
    session.read(binlog, &start.from(), &end_pos, sid)?;
    let (rows_total, gtid) = (session.rows_total, session.gtid.clone());
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
    start.finish(streams, out, &end, Some(gtid))
}

/// Where a run starts reading and how it tells what each stream already has.
enum Start {
    /// By binlog file and position: the oldest bookmark's, with its GTID (tracked as
    /// transactions pass). Events up to a stream's own position are already sent.
    File { pos: Position, gtid: Option<String> },
    /// By GTID (`use_gtid`): from the transactions every stream has (`from`); a transaction is
    /// already sent for a stream when its own GTID position (`streams`) includes it. File names
    /// and positions are only hints: they may be another server's.
    Gtid {
        from: GtidState,
        streams: Vec<GtidState>,
        server: GtidState,
    },
}

/// Chooses how this run starts: by GTID when `use_gtid` is set and the bookmarks and the
/// server have GTIDs, else by file and position. Bookmarks without a GTID are an error under
/// `use_gtid` (a warning without it) once the server has GTIDs.
fn plan_start(
    flavor: Flavor,
    use_gtid: bool,
    streams: &[CdcStream],
    end: &BinlogCoords,
) -> Result<Start> {
    let server = match end.gtid.as_deref() {
        Some(g) => GtidState::parse(flavor, g).map_err(|e| {
            Error::runtime(format!(
                "binlog: the server's GTID position '{g}' is not readable: {e}"
            ))
        })?,
        None => GtidState::parse(flavor, "").map_err(Error::runtime)?,
    };
    let missing: Vec<&str> = streams
        .iter()
        .filter(|s| stream_gtid(s).is_none())
        .map(|s| s.plan.stream_id.as_str())
        .collect();
    if !use_gtid {
        if !missing.is_empty() && !server.is_empty() {
            log::warn!(
                "{}: the LOG_BASED bookmark has no gtid although the server uses GTIDs, so it could not be resumed by GTID (use_gtid) after a failover; it gets one as it advances",
                names(&missing)
            );
        }
        return file_start(streams);
    }
    if !missing.is_empty() {
        if server.is_empty() {
            log::info!("binlog: use_gtid is set but the server has no GTID yet: starting from the bookmarks' file/position");
            return file_start(streams);
        }
        return Err(missing_gtid_error(&missing));
    }
    let states = streams
        .iter()
        .map(|s| bookmark_gtid(flavor, stream_gtid(s).unwrap_or_default()))
        .collect::<Result<Vec<_>>>()?;
    if server.is_empty() && states.iter().all(GtidState::is_empty) {
        log::info!("binlog: use_gtid is set but the server has no GTID yet: starting from the bookmarks' file/position");
        return file_start(streams);
    }
    gtid_start(streams, states, server)
}

/// A stream bookmark's `gtid` ("" when the server had no GTID transaction at that point).
fn stream_gtid(s: &CdcStream) -> Option<&str> {
    s.bookmark.binlog().gtid()
}

fn names(ids: &[&str]) -> String {
    let quoted: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
    format!("stream {}", quoted.join(", "))
}

/// Bookmarks without a GTID under `use_gtid`: bad input (exit 2), the run reads nothing.
/// The tap cannot fill the GTID in: the bookmark's file and position may be another
/// server's, where they mean other transactions.
fn missing_gtid_error(missing: &[&str]) -> Error {
    Error::usage(format!(
        "{}: the LOG_BASED bookmark has no gtid, and with use_gtid the GTID is the position (its log_file/log_pos may be another server's). Re-snapshot the stream (remove its bookmark from the state); or, if the server that wrote the bookmark is still the one you read and is MariaDB, add its GTID to the bookmark as \"gtid\": the result of SELECT BINLOG_GTID_POS('<log_file>', <log_pos>) on that server; or run with use_gtid set to false",
        names(missing)
    ))
}

/// Starts at the oldest bookmark's file and position.
fn file_start(streams: &[CdcStream]) -> Result<Start> {
    let pos = streams
        .iter()
        .filter_map(|s| s.position())
        .min_by(|a, b| a.cmp(b))
        .ok_or_else(|| Error::runtime("LOG_BASED: no stream has a binlog bookmark"))?;
    // The GTID position that goes with the oldest bookmark, to keep tracking it.
    let gtid = streams
        .iter()
        .filter(|s| s.position().as_ref() == Some(&pos))
        .find_map(|s| stream_gtid(s).map(str::to_string));
    Ok(Start::File { pos, gtid })
}

/// Starts at the transactions every stream has; refuses a bookmark that has transactions the
/// server's binary log does not (another server, or a failover that lost them).
fn gtid_start(streams: &[CdcStream], states: Vec<GtidState>, server: GtidState) -> Result<Start> {
    for (s, g) in streams.iter().zip(&states) {
        if !server.contains_all(g) {
            return Err(Error::runtime(format!(
                "binlog: the bookmark of stream '{}' is ahead of the server's binary log: its GTID position '{g}' has transactions the server's ('{server}') does not. Is this another server, or did a failover lose them? Re-snapshot the LOG_BASED streams: remove their bookmarks from the state",
                s.plan.stream_id
            )));
        }
    }
    let from = states
        .iter()
        .skip(1)
        .fold(states.first().cloned(), |acc, g| acc.map(|a| a.common(g)))
        .ok_or_else(|| Error::runtime("LOG_BASED: no stream has a binlog bookmark"))?;
    Ok(Start::Gtid {
        from,
        streams: states,
        server,
    })
}

impl Start {
    fn from(&self) -> DumpFrom {
        match self {
            Start::File { pos, .. } => DumpFrom::File(pos.clone()),
            Start::Gtid { from, .. } => DumpFrom::Gtid(from.clone()),
        }
    }

    /// The binlog file before the dump's first rotate event names the real one.
    fn file(&self) -> String {
        match self {
            Start::File { pos, .. } => pos.file.clone(),
            Start::Gtid { .. } => String::new(),
        }
    }

    /// The GTID position as transactions pass, from the start.
    fn tracker(&self, flavor: Flavor) -> Result<GtidState> {
        match self {
            Start::File { gtid, .. } => bookmark_gtid(flavor, gtid.as_deref().unwrap_or("")),
            Start::Gtid { from, .. } => Ok(from.clone()),
        }
    }

    fn stream_gtids(&self) -> Option<Vec<GtidState>> {
        match self {
            Start::File { .. } => None,
            Start::Gtid { streams, .. } => Some(streams.clone()),
        }
    }

    /// Whether there is nothing to read; an error when the bookmarks are ahead of the server.
    fn at_end(&self, end: &Position) -> Result<bool> {
        match self {
            Start::Gtid { from, server, .. } => Ok(from.contains_all(server)),
            Start::File { pos, .. } => match pos.cmp(end) {
                std::cmp::Ordering::Equal => Ok(true),
                std::cmp::Ordering::Less => Ok(false),
                std::cmp::Ordering::Greater => Err(Error::runtime(format!(
                    "binlog: the bookmark {}:{} is ahead of the server's binary log (it ends at {}:{}): is this another server, or was the binlog reset? Re-snapshot the LOG_BASED streams: remove their bookmarks from the state",
                    pos.file, pos.pos, end.file, end.pos
                ))),
            },
        }
    }

    /// Moves every stream to the end position. `read`: the GTID position where the read ended
    /// (None when nothing was read).
    fn finish(
        &self,
        streams: &mut [CdcStream],
        out: &OutputSender,
        end: &BinlogCoords,
        read: Option<GtidState>,
    ) -> Result<()> {
        match self {
            Start::File { .. } => finish(streams, out, end, read.and_then(|g| g.text())),
            Start::Gtid {
                streams: starts,
                server,
                ..
            } => finish_gtid(streams, out, end, read.as_ref().unwrap_or(server), starts),
        }
    }
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
    /// The GTID position of the last transaction boundary.
    gtid: GtidState,
    /// The GTID of the transaction being read (added to `gtid` at its end).
    current: Option<TxnGtid>,
    /// Reading by GTID: each stream's GTID position at the start of the run (what it has).
    stream_gtids: Option<Vec<GtidState>>,
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
        start: &DumpFrom,
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
                    if crate::source::errors::connection_lost(&e)
                        && reconnects < self.opts.reconnect_limit.max(1) =>
                {
                    reconnects += 1;
                    binlog = self.reconnect(e, start, sid)?;
                    continue;
                }
                Err(e) => return Err(dump_error(e, start)),
            };
            let pos = self.on_event(&event, &binlog)?;
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
    fn covered(&self, idx: usize, pos: &Position) -> bool {
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
                        uuid: super::values::uuid_text(&g.sid()),
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
        if self.covered(idx, pos) || self.streams[idx].resnapshot.is_some() {
            return Ok(()); // already sent, or re-read as a whole
        }
        let s = &self.streams[idx];
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
        s.plan.check_text(&s.warnings)?;
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

fn value_error(s: &CdcStream, ci: usize, pos: &Position, e: String) -> Error {
    Error::runtime(format!(
        "stream '{}' column '{}' at binlog {}:{}: {e}",
        s.plan.stream_id, s.plan.columns[ci].name, pos.file, pos.pos
    ))
}

/// Moves every stream that is behind to the end position (streams marked for a re-snapshot
/// keep the bookmark that asks for it).
fn finish(
    streams: &mut [CdcStream],
    out: &OutputSender,
    end: &BinlogCoords,
    gtid: Option<String>,
) -> Result<()> {
    // An empty server position (no GTID transaction yet) leaves the bookmarks' as they are.
    let end_gtid = end.gtid.clone().filter(|g| !g.is_empty()).or(gtid);
    let end_pos = Position {
        file: end.file.clone(),
        pos: end.position,
    };
    let mut moved = Vec::new();
    for s in streams.iter_mut().filter(|s| s.resnapshot.is_none()) {
        let behind = s
            .position()
            .is_none_or(|p| p.cmp(&end_pos) == std::cmp::Ordering::Less);
        if behind {
            let b = s.bookmark_at(&end.file, end.position, end_gtid.clone());
            s.bookmark = b.clone();
            moved.push((s.plan.stream_id.clone(), b));
        }
    }
    send_bookmarks(out, moved)
}

/// New bookmarks of several streams at one binlog position, as one STATE line: a resume from
/// any STATE then finds every stream a transaction touched on the same side of it.
fn send_bookmarks(out: &OutputSender, moved: Vec<(String, Bookmark)>) -> Result<()> {
    let last = moved.len().saturating_sub(1);
    for (i, (stream, b)) in moved.into_iter().enumerate() {
        let line = if i == last {
            StateLine::Now
        } else {
            StateLine::Final // folded into the STATE line of the last one
        };
        out.bookmark_with(&stream, b, None, line)?;
    }
    Ok(())
}

/// Reading by GTID: every stream moves to the end position with its GTID position there (what
/// it had plus what the run read, or the server's when nothing was read), also when only the
/// file name changes (bookmarks then carry this server's names).
fn finish_gtid(
    streams: &mut [CdcStream],
    out: &OutputSender,
    end: &BinlogCoords,
    read: &GtidState,
    starts: &[GtidState],
) -> Result<()> {
    let mut moved = Vec::new();
    for (s, start) in streams.iter_mut().zip(starts) {
        if s.resnapshot.is_some() {
            continue;
        }
        let b = s.bookmark_at(&end.file, end.position, Some(start.union(read).to_string()));
        if b != s.bookmark {
            s.bookmark = b.clone();
            moved.push((s.plan.stream_id.clone(), b));
        }
    }
    send_bookmarks(out, moved)
}
