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

mod feed;
mod positions;
mod rows;
mod session;

use positions::plan_start;
use session::Session;

use mysql::prelude::Queryable;
use mysql::Conn;

use super::dump::{check_gtid_mode, open_dump, preflight, server_id};
use super::stream::send_schema;
pub(crate) use super::stream::{CdcStream, Position};
use crate::config::{Flavor, TypeOptions};
use crate::error::{Error, MysqlContext, Result};
use crate::sink::record::OutputSender;
use crate::source::connect::{Connector, ServerInfo};
use crate::source::snapshot::read_coords;

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
        tables: rows::TableMaps::default(),
        rowbuf: rows::RowBuffers::default(),
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

/// What the reader needs to know of the server's settings.
pub(super) struct ServerFacts {
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

    pub(super) fn table_key(&self, db: &str, table: &str) -> (String, String) {
        if self.fold_case {
            (db.to_lowercase(), table.to_lowercase())
        } else {
            (db.to_string(), table.to_string())
        }
    }
}
