//! The replication connection: server checks, the replica id, starting a dump (by file and
//! position or by GTID), GTID tracking, and what the server's errors mean.

use mysql::prelude::Queryable;
use mysql::{BinlogDumpFlags, BinlogRequest, Conn};

use super::gtid::{MariadbGtidPos, MysqlGtidSet};
use super::stream::Position;
use crate::config::Flavor;
use crate::error::{Error, MysqlContext, Result};
use crate::source::connect::ServerInfo;

/// Starts a binlog dump at `from` (by GTID when `gtid` is given).
pub(crate) fn open_dump(
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
pub(crate) enum GtidTracker {
    Mariadb(MariadbGtidPos),
    Mysql(MysqlGtidSet),
}

impl GtidTracker {
    pub(crate) fn start(flavor: Flavor, from: Option<&str>) -> Result<GtidTracker> {
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

    pub(crate) fn text(&self) -> Option<String> {
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

pub(crate) fn dump_error(e: mysql::Error, start: &Position) -> Error {
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
