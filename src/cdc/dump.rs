//! The replication connection: server checks, the replica id, starting a dump (by file and
//! position or by GTID), GTID tracking, and what the server's errors mean.

use mysql::prelude::Queryable;
use mysql::{BinlogDumpFlags, BinlogRequest, Conn};

use super::gtid::{GtidState, MariadbGtidPos, MysqlGtidSet};
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
        DumpFrom::File(p) => file_request(request, p),
        DumpFrom::Gtid(g) => gtid_request(&mut conn, request, g)?,
    };
    conn.get_binlog_stream(request)
        .map_err(|e| dump_error(e, from))
}

/// A dump request from a file and position of this server.
fn file_request<'r>(request: BinlogRequest<'r>, p: &Position) -> BinlogRequest<'r> {
    request
        .with_filename(p.file.clone().into_bytes())
        .with_pos(p.pos)
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
            let [state, options] = mariadb_gtid_settings(pos);
            conn.query_drop(state)
                .context("binlog: setting slave_connect_state")?;
            conn.query_drop(options)
                .context("binlog: setting GTID replica options")?;
            log::info!("binlog: starting from MariaDB GTID position {pos}");
            Ok(request)
        }
        GtidState::Mysql(set) => {
            let request = mysql_gtid_request(request, set)?;
            log::info!("binlog: starting from MySQL GTID set {set}");
            Ok(request)
        }
    }
}

/// The session settings that make a MariaDB server start a dump at `pos`.
fn mariadb_gtid_settings(pos: &MariadbGtidPos) -> [String; 2] {
    [
        // Canonical text of a parsed position: digits, dashes and commas only.
        format!("SET @slave_connect_state = '{pos}'"),
        "SET @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0".to_string(),
    ]
}

/// A MySQL dump request by GTID set (COM_BINLOG_DUMP_GTID).
fn mysql_gtid_request<'r>(
    request: BinlogRequest<'r>,
    set: &MysqlGtidSet,
) -> Result<BinlogRequest<'r>> {
    let sids = mysql_sids(set)?;
    Ok(request.with_use_gtid(true).with_sids(sids))
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

/// What a failed dump start means for the user: a position the server no longer has (with how
/// to re-snapshot), a missing privilege, or the server's error as it is.
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cdc::gtid::MariadbGtidPos;

    const U1: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
    const U2: &str = "4b2f9a1c-0000-11ee-8c99-0242ac120002";

    fn server(code: u16, message: &str) -> mysql::Error {
        mysql::Error::MySqlError(mysql::MySqlError {
            state: "HY000".into(),
            message: message.into(),
            code,
        })
    }

    fn file(name: &str, pos: u64) -> DumpFrom {
        DumpFrom::File(Position {
            file: name.into(),
            pos,
        })
    }

    fn gtid(flavor: Flavor, text: &str) -> DumpFrom {
        DumpFrom::Gtid(bookmark_gtid(flavor, text).unwrap())
    }

    fn runtime(e: Error) -> String {
        match e {
            Error::Runtime(m) => m,
            other => panic!("not a runtime error: {other}"),
        }
    }

    #[test]
    fn bookmark_gtids_parse_to_the_canonical_text_of_their_flavor() {
        let maria = bookmark_gtid(Flavor::Mariadb, " 1-2-7, 0-1-100 ").unwrap();
        assert!(matches!(maria, GtidState::Mariadb(_)));
        assert_eq!(maria.to_string(), "0-1-100,1-2-7");
        let text = format!("{}:7:1-5,\n{U2}:Tag_A:1-3", U1.to_uppercase());
        let my = bookmark_gtid(Flavor::Mysql, &text).unwrap();
        assert!(matches!(my, GtidState::Mysql(_)));
        assert_eq!(my.to_string(), format!("{U1}:1-5:7,{U2}:tag_a:1-3"));
        assert!(bookmark_gtid(Flavor::Mysql, "").unwrap().is_empty());
        assert!(bookmark_gtid(Flavor::Mariadb, "").unwrap().is_empty());
    }

    #[test]
    fn bad_bookmark_gtids_are_usage_errors() {
        let usage = |flavor, text: &str| match bookmark_gtid(flavor, text) {
            Err(Error::Usage(m)) => m,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            usage(Flavor::Mariadb, "0-1"),
            "state: the bookmark's gtid '0-1' is not usable: '0-1' is not a MariaDB GTID (domain-server-sequence)"
        );
        assert_eq!(
            usage(Flavor::Mariadb, "0-1-5,0-2-6"),
            "state: the bookmark's gtid '0-1-5,0-2-6' is not usable: domain 0 appears twice in '0-1-5,0-2-6'"
        );
        let mysql_text = format!("{U1}:1-5");
        assert!(usage(Flavor::Mariadb, &mysql_text).starts_with(&format!(
            "state: the bookmark's gtid '{mysql_text}' is not usable: "
        )));
        assert_eq!(
            usage(Flavor::Mysql, "0-1-100"),
            "state: the bookmark's gtid '0-1-100' is not usable: '0-1-100' does not start with a server UUID"
        );
        assert_eq!(
            usage(Flavor::Mysql, &format!("{U1}:5-1")),
            format!("state: the bookmark's gtid '{U1}:5-1' is not usable: bad interval '5-1' in '{U1}:5-1'")
        );
    }

    #[test]
    fn positions_print_for_messages() {
        assert_eq!(
            file("binlog.000003", 1234).to_string(),
            "binlog.000003:1234"
        );
        assert_eq!(
            gtid(Flavor::Mariadb, "0-1-100").to_string(),
            "GTID position '0-1-100'"
        );
    }

    #[test]
    fn a_purged_file_or_gtid_says_how_to_resnapshot() {
        let purged = "Could not find first log file name in binary log index file";
        assert_eq!(
            runtime(dump_error(server(1236, purged), &file("binlog.000003", 4))),
            format!("binlog: the server cannot serve binlog.000003:4 ({purged}): the file was probably purged. Re-snapshot the LOG_BASED streams: remove their bookmarks from the state and run again")
        );
        let lost = "Cannot replicate because the source purged required binary logs.";
        let m = runtime(dump_error(
            server(1236, lost),
            &gtid(Flavor::Mysql, &format!("{U1}:1-9")),
        ));
        assert_eq!(
            m,
            format!("binlog: the server cannot serve GTID position '{U1}:1-9' ({lost}): the binary log that holds the transactions after it was probably purged, or it holds transactions this server does not have. Re-snapshot the LOG_BASED streams: remove their bookmarks from the state and run again")
        );
    }

    #[test]
    fn a_missing_privilege_names_the_privilege() {
        for code in [1227, 1044, 1045] {
            let m = runtime(dump_error(
                server(code, "Access denied"),
                &file("b.000001", 4),
            ));
            assert_eq!(
                m,
                "binlog: reading the binary log needs the REPLICATION SLAVE (and REPLICATION CLIENT) privilege: Access denied",
                "{code}"
            );
        }
    }

    #[test]
    fn other_errors_keep_the_server_error() {
        let e = dump_error(server(2013, "Lost connection"), &file("b.000001", 4));
        assert!(
            matches!(&e, Error::Mysql { context, .. } if context == "binlog: reading the binary log")
        );
        assert_eq!(
            e.to_string(),
            "binlog: reading the binary log: server error 2013 (HY000): Lost connection"
        );
        let io = mysql::Error::IoError(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "reset",
        ));
        assert_eq!(
            dump_error(io, &gtid(Flavor::Mariadb, "0-1-1")).to_string(),
            "binlog: reading the binary log: network error: reset"
        );
    }

    #[test]
    fn compressed_events_are_refused() {
        let txn = refused_event(40).unwrap();
        assert!(txn.contains("binlog_transaction_compression=ON"), "{txn}");
        for t in [165, 170, 174] {
            let m = refused_event(t).unwrap();
            assert!(m.contains("log_bin_compress=ON"), "{t}: {m}");
        }
        for t in [
            0, 2, 4, 15, 19, 30, 31, 32, 33, 39, 41, 160, 162, 163, 164, 175, 255,
        ] {
            assert_eq!(refused_event(t), None, "{t}");
        }
    }

    #[test]
    fn file_requests_start_at_the_bookmark() {
        let r = file_request(
            BinlogRequest::new(77).with_flags(BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK),
            &Position {
                file: "mysql-bin.000042".into(),
                pos: 5_000_000_000,
            },
        );
        assert_eq!(r.server_id(), 77);
        assert_eq!(r.filename_raw(), b"mysql-bin.000042");
        assert_eq!(r.pos(), 5_000_000_000);
        assert!(!r.use_gtid());
        assert!(r.flags().contains(BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK));
    }

    #[test]
    fn mysql_gtid_sets_become_sid_blocks() {
        let set = MysqlGtidSet::parse(&format!("{U2}:tag_a:1-3,{U1}:1-5:7")).unwrap();
        let r = mysql_gtid_request(BinlogRequest::new(9), &set).unwrap();
        assert!(r.use_gtid());
        let sids = r.sids();
        assert_eq!(sids.len(), 2);
        assert_eq!(
            sids[0].uuid(),
            [
                0x3e, 0x11, 0xfa, 0x47, 0x71, 0xca, 0x11, 0xe1, 0x9e, 0x33, 0xc8, 0x0a, 0xa9, 0x42,
                0x95, 0x62
            ]
        );
        assert!(sids[0].tag().is_none());
        let ranges = |i: usize| -> Vec<(u64, u64)> {
            sids[i]
                .intervals()
                .iter()
                .map(|g| (g.start(), g.end()))
                .collect()
        };
        assert_eq!(ranges(0), [(1, 6), (7, 8)], "end exclusive");
        assert_eq!(sids[1].uuid()[..4], [0x4b, 0x2f, 0x9a, 0x1c]);
        assert_eq!(sids[1].tag().map(|t| t.as_str()), Some("tag_a"));
        assert_eq!(ranges(1), [(1, 4)]);

        assert!(mysql_sids(&MysqlGtidSet::default()).unwrap().is_empty());
        let mut bad = MysqlGtidSet::default();
        bad.add(U1, "bad-tag", 1);
        match mysql_sids(&bad) {
            Err(Error::Usage(m)) => {
                assert_eq!(
                    m,
                    format!("state: gtid '{U1}:bad-tag:1': bad tag 'bad-tag'")
                )
            }
            other => panic!("{:?}", other.map(|s| s.len())),
        }
    }

    #[test]
    fn mariadb_dumps_start_from_the_canonical_position() {
        let pos = MariadbGtidPos::parse(" 1-2-7 , 0-1-100").unwrap();
        assert_eq!(
            mariadb_gtid_settings(&pos),
            [
                "SET @slave_connect_state = '0-1-100,1-2-7'",
                "SET @slave_gtid_strict_mode = 0, @slave_gtid_ignore_duplicates = 0",
            ]
        );
        assert_eq!(
            mariadb_gtid_settings(&MariadbGtidPos::default())[0],
            "SET @slave_connect_state = ''"
        );
    }
}
