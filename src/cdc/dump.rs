//! The replication connection: server checks, the replica id, starting a dump (by file and
//! position or by GTID), GTID tracking, and what the server's errors mean.

use mysql::prelude::Queryable;
use mysql::{BinlogDumpFlags, BinlogRequest, Conn};

use super::gtid::{GtidState, MysqlGtidSet};
use super::stream::Position;
use crate::config::Flavor;
use crate::error::{Error, MysqlContext, Result};
use crate::source::connect::ServerInfo;

/// Where a dump starts.
pub(crate) enum DumpFrom {
    /// A binlog file and position of this server.
    File(Position),
    /// A GTID position (`use_gtid`): the server finds its own file and position.
    Gtid(GtidState),
}

impl std::fmt::Display for DumpFrom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpFrom::File(p) => write!(f, "{}:{}", p.file, p.pos),
            DumpFrom::Gtid(g) => write!(f, "GTID position '{g}'"),
        }
    }
}

/// Starts a binlog dump at `from`.
pub(crate) fn open_dump(
    mut conn: Conn,
    server: &ServerInfo,
    sid: u32,
    from: &DumpFrom,
) -> Result<mysql::BinlogStream> {
    if server.flavor == Flavor::Mariadb {
        conn.query_drop("SET @mariadb_slave_capability = 4")
            .context("binlog: announcing MariaDB replica capability")?;
    }
    let request = BinlogRequest::new(sid).with_flags(BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
    let request = match from {
        DumpFrom::File(p) => request
            .with_filename(p.file.clone().into_bytes())
            .with_pos(p.pos),
        DumpFrom::Gtid(g) => gtid_request(&mut conn, request, g)?,
    };
    conn.get_binlog_stream(request)
        .map_err(|e| dump_error(e, from))
}

/// Parses a bookmark's GTID text for `flavor`.
pub(crate) fn bookmark_gtid(flavor: Flavor, text: &str) -> Result<GtidState> {
    GtidState::parse(flavor, text).map_err(|e| {
        Error::usage(format!(
            "state: the bookmark's gtid '{text}' is not usable: {e}"
        ))
    })
}

/// A dump request by GTID (`use_gtid`): MariaDB through `@slave_connect_state`, MySQL through
/// COM_BINLOG_DUMP_GTID with the GTID set. No file name: the bookmark's may be another
/// server's; the server finds where the position is in its own binary log.
fn gtid_request<'r>(
    conn: &mut Conn,
    request: BinlogRequest<'r>,
    gtid: &GtidState,
) -> Result<BinlogRequest<'r>> {
    let request = request.with_filename(Vec::new()).with_pos(4u64);
    match gtid {
        GtidState::Mariadb(pos) => {
            // Canonical text of a parsed position: digits, dashes and commas only.
            conn.query_drop(format!("SET @slave_connect_state = '{pos}'"))
                .context("binlog: setting slave_connect_state")?;
            conn.query_drop("SET @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0")
                .context("binlog: setting GTID replica options")?;
            log::info!("binlog: starting from MariaDB GTID position {pos}");
            Ok(request)
        }
        GtidState::Mysql(set) => {
            let sids = mysql_sids(set)?;
            log::info!("binlog: starting from MySQL GTID set {set}");
            Ok(request.with_use_gtid(true).with_sids(sids))
        }
    }
}

/// A MySQL GTID set as COM_BINLOG_DUMP_GTID's SID blocks.
fn mysql_sids(set: &MysqlGtidSet) -> Result<Vec<mysql_common::packets::Sid<'static>>> {
    let mut sids = Vec::new();
    for (uuid, tag, ranges) in set.entries() {
        let hex: String = uuid.chars().filter(|c| *c != '-').collect();
        let mut bytes = [0u8; 16];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = hex
                .get(i * 2..i * 2 + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .unwrap_or(0);
        }
        let mut sid = mysql_common::packets::Sid::new(bytes).with_intervals(
            ranges
                .iter()
                .map(|&(s, e)| mysql_common::packets::GnoInterval::new(s, e + 1))
                .collect(),
        );
        if !tag.is_empty() {
            let t = mysql_common::packets::Tag::new(tag.to_string())
                .map_err(|_| Error::usage(format!("state: gtid '{set}': bad tag '{tag}'")))?;
            sid = sid.with_tag(t);
        }
        sids.push(sid);
    }
    Ok(sids)
}

/// `use_gtid` on MySQL needs `gtid_mode=ON`.
pub(crate) fn check_gtid_mode(conn: &mut Conn) -> Result<()> {
    let mode: Option<String> = conn
        .query_first("SELECT @@GLOBAL.gtid_mode")
        .context("binlog: reading gtid_mode")?;
    if mode.as_deref() == Some("ON") {
        return Ok(());
    }
    Err(Error::runtime(format!(
        "use_gtid is set but the server has gtid_mode={}: turn GTIDs on or set use_gtid to false",
        mode.unwrap_or_default()
    )))
}

/// Checks the server settings CDC depends on, with what to change.
pub(crate) fn preflight(conn: &mut Conn) -> Result<()> {
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
pub(crate) fn server_id(configured: Option<u32>, conn: &mut Conn) -> Result<u32> {
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

pub(crate) fn dump_error(e: mysql::Error, from: &DumpFrom) -> Error {
    let what = match from {
        DumpFrom::File(_) => "the file was probably purged",
        DumpFrom::Gtid(_) => {
            "the binary log that holds the transactions after it was probably purged, or it holds transactions this server does not have"
        }
    };
    use crate::source::errors::{classify, Class};
    match (&e, classify(&e)) {
        (mysql::Error::MySqlError(se), Class::BinlogGone) => Error::runtime(format!(
            "binlog: the server cannot serve {from} ({}): {what}. Re-snapshot the LOG_BASED streams: remove their bookmarks from the state and run again",
            se.message
        )),
        (mysql::Error::MySqlError(se), Class::Denied) => Error::runtime(format!(
            "binlog: reading the binary log needs the REPLICATION SLAVE (and REPLICATION CLIENT) privilege: {}",
            se.message
        )),
        _ => Error::mysql("binlog: reading the binary log", e),
    }
}
