//! A set of connections that all read one consistent point in time, plus the binlog
//! coordinates of that point.
//!
//! Promises:
//! - Worker connections are opened before any lock is taken, so the lock window only covers
//!   `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY` on each worker and one read of the
//!   binlog coordinates.
//! - Every snapshot transaction has started before the lock is released (starting one after
//!   the release would let it see commits the coordinates do not cover: duplicates in CDC).
//! - Lock waits are bounded (`lock_wait_timeout`, and `max_statement_time` on MariaDB): a
//!   server busy with long queries makes us try the next method, not hang.
//! - Methods, in order (`snapshot_method: auto`), each logged; the least disruptive first:
//!   1. no lock at all on MariaDB and Percona: each snapshot reports its own binlog position
//!      (`binlog_snapshot_file`/`_position`), and all workers must report the same one,
//!   2. `FLUSH TABLES t1, t2 WITH READ LOCK` (only the tables read; needs RELOAD and LOCK
//!      TABLES),
//!   3. `LOCK TABLES t1 READ, ...` held by the lock connection (needs LOCK TABLES),
//!   4. `FLUSH TABLES WITH READ LOCK` (global: every write on the server waits; needs RELOAD),
//!   5. only when configured (`snapshot_method: independent`): one snapshot per worker, started
//!      one after the other, which is NOT consistent across tables.
//! - The caller opens no snapshot at all when nothing is read as of one point in time (runs
//!   that only read the binlog or INCREMENTAL streams): such runs take no lock.
//!
//!   When none of 1–4 is possible in automatic mode, the run continues with one worker (whose
//!   own snapshot is consistent across tables) and a warning; a forced method fails instead.

use mysql::prelude::Queryable;
use mysql::Conn;

use super::connect::{Connector, ServerInfo};
use super::query::qualified;
use crate::config::{Flavor, SnapshotMethod};
use crate::error::{Error, MysqlContext, Result};

/// Where the snapshot sits in the binary log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct BinlogCoords {
    /// Binlog file name.
    pub file: String,
    /// Position in that file.
    pub position: u64,
    /// GTID set (MySQL `gtid_executed`) or position (MariaDB `gtid_binlog_pos`) at exactly this
    /// file and position, when known ("" when the server had no GTID transaction yet).
    pub gtid: Option<String>,
    /// Where `gtid` came from.
    pub gtid_source: Option<GtidSource>,
}

/// Where the GTID of a binlog position came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum GtidSource {
    /// MariaDB `BINLOG_GTID_POS(file, position)`.
    BinlogGtidPos,
    /// MariaDB `@@GLOBAL.gtid_binlog_pos`, read while the binlog stood at the position.
    GtidBinlogPos,
    /// MySQL `@@GLOBAL.gtid_executed`, read while the binlog stood at the position.
    GtidExecuted,
}

impl GtidSource {
    /// The source as the logs name it.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            GtidSource::BinlogGtidPos => "BINLOG_GTID_POS",
            GtidSource::GtidBinlogPos => "@@gtid_binlog_pos",
            GtidSource::GtidExecuted => "@@gtid_executed",
        }
    }
}

/// What one source said about the GTID of a binlog position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum GtidReading {
    /// The position's GTID ("" when the server has no GTID transaction yet).
    Found(GtidSource, String),
    /// The server does not use GTIDs (MySQL `gtid_mode=OFF` with nothing executed by GTID).
    Off,
    /// The source could not tell, and why.
    Unusable(GtidSource, String),
}

/// The GTID of a binlog position from the first source, in order of preference, that found
/// one (whitespace dropped: MySQL prints sets over several lines). `Ok(None)` when the server
/// does not use GTIDs; `Err` says why no source could tell.
pub(crate) fn choose_gtid(
    readings: &[GtidReading],
) -> std::result::Result<Option<(GtidSource, String)>, String> {
    if let Some((source, g)) = readings.iter().find_map(|r| match r {
        GtidReading::Found(source, g) => Some((*source, g)),
        _ => None,
    }) {
        return Ok(Some((source, g.split_whitespace().collect())));
    }
    if readings.contains(&GtidReading::Off) {
        return Ok(None);
    }
    let why: Vec<String> = readings
        .iter()
        .filter_map(|r| match r {
            GtidReading::Unusable(source, why) => Some(format!("{}: {why}", source.describe())),
            _ => None,
        })
        .collect();
    Err(if why.is_empty() {
        "no source to read it from".to_string()
    } else {
        why.join("; ")
    })
}

/// Connections in one consistent snapshot.
pub(crate) struct SnapshotSet {
    /// One connection per worker, each inside its snapshot transaction.
    pub conns: Vec<Conn>,
    /// The snapshot's binlog coordinates (None when the binlog is off).
    pub coords: Option<BinlogCoords>,
}

/// Options of [`open`].
pub(crate) struct SnapshotOptions<'a> {
    /// Worker connections wanted.
    pub workers: usize,
    /// Tables the run reads (for table-level locks).
    pub tables: &'a [(String, String)],
    /// A forced method, or None for the automatic order.
    pub method: Option<SnapshotMethod>,
    /// Seconds a lock may be waited for.
    pub lock_timeout_s: u64,
    /// Read the snapshot's GTID position. Only LOG_BASED loads need it, and on MariaDB's
    /// lock-free method it costs `BINLOG_GTID_POS`, which reads the binlog file up to the
    /// position (a second or more for a large file).
    pub gtid: bool,
}

/// Opens the worker connections and starts one consistent snapshot on all of them.
pub(crate) fn open(
    connector: &Connector,
    server: &ServerInfo,
    opts: &SnapshotOptions<'_>,
) -> Result<SnapshotSet> {
    let mut conns = (0..opts.workers.max(1))
        .map(|i| connector.connect(&format!("snapshot worker {}", i + 1)))
        .collect::<Result<Vec<_>>>()?;
    let order: Vec<SnapshotMethod> = match opts.method {
        Some(m) => vec![m],
        None if conns.len() == 1 => vec![SnapshotMethod::Single],
        None => vec![
            SnapshotMethod::LockFree,
            SnapshotMethod::TableLock,
            SnapshotMethod::LockTables,
            SnapshotMethod::GlobalLock,
        ],
    };
    let mut failures = Vec::new();
    for method in order {
        if method == SnapshotMethod::LockFree
            && server.flavor != Flavor::Mariadb
            && !is_percona(&mut conns[0])
        {
            failures.push(format!(
                "{}: needs MariaDB or Percona Server",
                method.describe()
            ));
            continue;
        }
        if matches!(
            method,
            SnapshotMethod::TableLock | SnapshotMethod::LockTables
        ) && opts.tables.is_empty()
        {
            continue;
        }
        let attempt = match method {
            SnapshotMethod::LockFree => lock_free(&mut conns, server, opts.gtid),
            SnapshotMethod::Independent => independent(&mut conns, server),
            SnapshotMethod::Single if server.flavor == Flavor::Mariadb => {
                lock_free(&mut conns, server, opts.gtid)
            }
            SnapshotMethod::Single => independent(&mut conns, server),
            _ => with_lock(connector, &mut conns, server, method, opts),
        };
        match attempt {
            Ok(coords) => {
                log::info!(
                    "snapshot: {} worker connection(s) share one snapshot via {}{}",
                    conns.len(),
                    method.describe(),
                    coords
                        .as_ref()
                        .map(|c| format!(
                            " at {}:{}{}",
                            c.file,
                            c.position,
                            match (&c.gtid, c.gtid_source) {
                                (Some(g), Some(source)) =>
                                    format!(" (GTID '{g}' from {})", source.describe()),
                                _ => String::new(),
                            }
                        ))
                        .unwrap_or_else(|| " (binlog off: no coordinates)".into())
                );
                if method == SnapshotMethod::Independent {
                    log::warn!("snapshot: snapshot_method is 'independent': tables are read at different points in time");
                }
                return Ok(SnapshotSet { conns, coords });
            }
            Err(e) => {
                log::info!("snapshot: {} not possible: {e}", method.describe());
                failures.push(format!("{}: {e}", method.describe()));
                // A failed attempt may have left transactions open: start clean.
                for c in conns.iter_mut() {
                    let _ = c.query_drop("ROLLBACK");
                }
            }
        }
    }
    if opts.method.is_none() && conns.len() > 1 {
        // Automatic mode never fails for lack of lock privileges: one connection's own
        // snapshot is consistent across tables, only slower.
        log::warn!(
            "snapshot: no way to share one snapshot between {} workers ({}); reading with one worker instead (grant RELOAD or LOCK TABLES for parallel reads)",
            conns.len(),
            failures.join("; ")
        );
        conns.truncate(1);
        let coords = match server.flavor {
            Flavor::Mariadb => lock_free(&mut conns, server, opts.gtid)?,
            Flavor::Mysql => independent(&mut conns, server)?,
        };
        return Ok(SnapshotSet { conns, coords });
    }
    Err(Error::runtime(format!(
        "cannot take a consistent snapshot ({}); grant RELOAD or LOCK TABLES, or set snapshot_method to 'independent' to accept per-table consistency only",
        failures.join("; ")
    )))
}

fn begin_snapshot(conn: &mut Conn) -> Result<()> {
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .context("snapshot: setting REPEATABLE READ")?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .context("snapshot: START TRANSACTION WITH CONSISTENT SNAPSHOT")
}

fn with_lock(
    connector: &Connector,
    conns: &mut [Conn],
    server: &ServerInfo,
    method: SnapshotMethod,
    opts: &SnapshotOptions<'_>,
) -> Result<Option<BinlogCoords>> {
    let mut lock = connector.connect("snapshot lock")?;
    let timeout = opts.lock_timeout_s.max(1);
    lock.query_drop(format!("SET SESSION lock_wait_timeout = {timeout}"))
        .context("snapshot: setting lock_wait_timeout")?;
    if server.flavor == Flavor::Mariadb {
        // FLUSH TABLES waits for running statements, which lock_wait_timeout does not bound.
        lock.query_drop(format!("SET SESSION max_statement_time = {timeout}"))
            .context("snapshot: setting max_statement_time")?;
    }
    let tables: Vec<String> = opts.tables.iter().map(|(d, t)| qualified(d, t)).collect();
    let sql = match method {
        SnapshotMethod::GlobalLock => "FLUSH TABLES WITH READ LOCK".to_string(),
        SnapshotMethod::TableLock => format!("FLUSH TABLES {} WITH READ LOCK", tables.join(", ")),
        _ => format!(
            "LOCK TABLES {}",
            tables
                .iter()
                .map(|t| format!("{t} READ"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    lock.query_drop(&sql).context(format!("snapshot: {sql}"))?;
    let started = std::time::Instant::now();
    let result = (|| {
        for c in conns.iter_mut() {
            begin_snapshot(c)?;
        }
        read_coords(&mut lock, server)
    })();
    // Release in every case; the snapshots (if started) are already fixed.
    let unlocked = lock
        .query_drop("UNLOCK TABLES")
        .context("snapshot: UNLOCK TABLES");
    log::debug!(
        "snapshot: lock held {:.1} ms",
        started.elapsed().as_secs_f64() * 1000.0
    );
    let coords = result?;
    unlocked?;
    Ok(coords)
}

fn lock_free(conns: &mut [Conn], server: &ServerInfo, gtid: bool) -> Result<Option<BinlogCoords>> {
    // BINLOG_GTID_POS gave NULL for this file: scanning it again gives NULL again.
    let mut null_in: Option<String> = None;
    for attempt in 0..LOCK_FREE_ATTEMPTS {
        let mut seen: Vec<(String, u64)> = Vec::new();
        for c in conns.iter_mut() {
            begin_snapshot(c)?;
            let rows: Vec<(String, String)> = c
                .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
                .context("snapshot: reading binlog_snapshot_file/position")?;
            let get = |k: &str| {
                rows.iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(k))
                    .map(|(_, v)| v.clone())
            };
            let (Some(file), Some(pos)) =
                (get("binlog_snapshot_file"), get("binlog_snapshot_position"))
            else {
                return Err(Error::runtime(
                    "the server does not report binlog_snapshot_file/position",
                ));
            };
            seen.push((file, pos.parse().unwrap_or(0)));
        }
        if seen.windows(2).all(|w| w[0] == w[1]) {
            let at = seen.swap_remove(0);
            if at.0.is_empty() {
                return Ok(None);
            }
            if !gtid {
                log::debug!("snapshot: GTID position not read (no LOG_BASED load in this run)");
                return Ok(Some(BinlogCoords {
                    file: at.0,
                    position: at.1,
                    gtid: None,
                    gtid_source: None,
                }));
            }
            let readings = snapshot_gtid(&mut conns[0], server, &at, &mut null_in)?;
            let last = attempt + 1 == LOCK_FREE_ATTEMPTS;
            if choose_gtid(&readings).is_ok() || last {
                return Ok(Some(coords_with(at, &readings)));
            }
            log::debug!(
                "snapshot: no GTID for {}:{} (attempt {}): starting the snapshot again",
                at.0,
                at.1,
                attempt + 1
            );
            for c in conns.iter_mut() {
                c.query_drop("ROLLBACK").context("snapshot: ROLLBACK")?;
            }
            continue;
        }
        log::debug!(
            "snapshot: workers saw different binlog positions (attempt {}), retrying",
            attempt + 1
        );
        for c in conns.iter_mut() {
            c.query_drop("ROLLBACK").context("snapshot: ROLLBACK")?;
        }
    }
    Err(Error::runtime(
        "workers kept seeing different binlog positions (the server commits too often between snapshot starts)",
    ))
}

fn independent(conns: &mut [Conn], server: &ServerInfo) -> Result<Option<BinlogCoords>> {
    // Coordinates first: every worker's snapshot is at or after them, so CDC from here repairs.
    let coords = read_coords(&mut conns[0], server)?;
    for c in conns.iter_mut() {
        begin_snapshot(c)?;
    }
    Ok(coords)
}

/// Snapshot attempts of the lock-free method.
const LOCK_FREE_ATTEMPTS: usize = 10;
/// Reads of the current position and GTID before the binlog is taken to be too busy to stand.
const STABLE_TRIES: usize = 5;

/// The GTID of a lock-free snapshot at `at`: `BINLOG_GTID_POS` (MariaDB), else the server's GTID
/// variable read at once on the same connection, which is the snapshot's only while the binlog
/// still stands at `at`. `null_in`: a file `BINLOG_GTID_POS` already failed for (not scanned again).
fn snapshot_gtid(
    conn: &mut Conn,
    server: &ServerInfo,
    at: &(String, u64),
    null_in: &mut Option<String>,
) -> Result<Vec<GtidReading>> {
    // First, while the server may still be at the snapshot's position.
    let moment = moment_gtid(conn, server, at);
    let mut readings = Vec::new();
    if server.flavor == Flavor::Mariadb {
        let primary = if null_in.as_deref() == Some(at.0.as_str()) {
            GtidReading::Unusable(GtidSource::BinlogGtidPos, "gave NULL for this file".into())
        } else {
            binlog_gtid_pos(conn, at)?
        };
        if matches!(primary, GtidReading::Unusable(..)) {
            *null_in = Some(at.0.clone());
        }
        readings.push(primary);
    }
    readings.push(moment);
    Ok(readings)
}

/// MariaDB `BINLOG_GTID_POS(file, position)`. The server gives NULL when it cannot read its way
/// to the position: one cause is an event in that file larger than the session's
/// `max_allowed_packet` (huge rows in a large binlog file).
fn binlog_gtid_pos(conn: &mut Conn, at: &(String, u64)) -> Result<GtidReading> {
    let g: Option<Option<String>> = conn
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (at.0.as_str(), at.1))
        .context("snapshot: BINLOG_GTID_POS")?;
    Ok(match g.flatten() {
        Some(g) => GtidReading::Found(GtidSource::BinlogGtidPos, g),
        None => GtidReading::Unusable(
            GtidSource::BinlogGtidPos,
            format!(
                "gave NULL for {}:{} (the server could not read its way there, e.g. past an event larger than max_allowed_packet)",
                at.0, at.1
            ),
        ),
    })
}

/// The server's GTID variable, read between two reads of the binlog position that both equal
/// `at`: no transaction was logged in between, so the value is the GTID at `at`.
fn moment_gtid(conn: &mut Conn, server: &ServerInfo, at: &(String, u64)) -> GtidReading {
    let source = match server.flavor {
        Flavor::Mariadb => GtidSource::GtidBinlogPos,
        Flavor::Mysql => GtidSource::GtidExecuted,
    };
    let stands = |conn: &mut Conn| show_status(conn, server).map(|p| p.as_ref() == Some(at));
    let read = (|| -> std::result::Result<Option<GtidReading>, mysql::Error> {
        if !stands(conn)? {
            return Ok(None);
        }
        let value = gtid_variable(conn, server.flavor)?;
        if !stands(conn)? {
            return Ok(None);
        }
        Ok(Some(match value {
            Some(g) => GtidReading::Found(source, g),
            None => GtidReading::Off,
        }))
    })();
    match read {
        Ok(Some(r)) => r,
        Ok(None) => GtidReading::Unusable(
            source,
            format!("the binlog moved past {}:{} while it was read", at.0, at.1),
        ),
        Err(e) => GtidReading::Unusable(source, Error::mysql("not readable", e).to_string()),
    }
}

/// The server's current GTID position: MariaDB `@@GLOBAL.gtid_binlog_pos` (the binlog's, not
/// `gtid_current_pos`, which may hold replicated transactions this binlog does not have);
/// MySQL `@@GLOBAL.gtid_executed`, None when the server does not use GTIDs.
fn gtid_variable(
    conn: &mut Conn,
    flavor: Flavor,
) -> std::result::Result<Option<String>, mysql::Error> {
    match flavor {
        Flavor::Mariadb => Ok(conn
            .query_first::<Option<String>, _>("SELECT @@GLOBAL.gtid_binlog_pos")?
            .flatten()
            .or(Some(String::new()))),
        Flavor::Mysql => {
            // Servers without GTID support have neither variable.
            let row: Option<(Option<String>, Option<String>)> = conn
                .query_first("SELECT @@GLOBAL.gtid_mode, @@GLOBAL.gtid_executed")
                .ok()
                .flatten();
            let (mode, executed) = row.unwrap_or_default();
            let executed: String = executed.unwrap_or_default().split_whitespace().collect();
            let off = mode.is_none_or(|m| m.eq_ignore_ascii_case("OFF"));
            Ok((!(off && executed.is_empty())).then_some(executed))
        }
    }
}

/// `SHOW MASTER STATUS` (`SHOW BINARY LOG STATUS` on MySQL 8.4+): the current file and
/// position, None when the binlog is off.
fn show_status(
    conn: &mut Conn,
    server: &ServerInfo,
) -> std::result::Result<Option<(String, u64)>, mysql::Error> {
    let row: Option<mysql::Row> = conn.query_first(status_sql(server))?;
    Ok(row.map(|row| (row.get(0).unwrap_or_default(), row.get(1).unwrap_or(0))))
}

fn status_sql(server: &ServerInfo) -> &'static str {
    if server.flavor == Flavor::Mysql && server.at_least(8, 4) {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    }
}

/// Coordinates at `at` with the GTID the readings give; logs where it came from, and warns
/// when no source could tell (bookmarks from here on have no `gtid`; `use_gtid` refuses them).
fn coords_with(at: (String, u64), readings: &[GtidReading]) -> BinlogCoords {
    let (file, position) = at;
    let (gtid, gtid_source) = match choose_gtid(readings) {
        Ok(Some((source, g))) => {
            let passed: Vec<String> = readings
                .iter()
                .filter_map(|r| match r {
                    GtidReading::Unusable(s, why) => Some(format!("{}: {why}", s.describe())),
                    _ => None,
                })
                .collect();
            // The preferred source could not tell: say which one did, and why.
            if matches!(readings.first(), Some(GtidReading::Unusable(..))) {
                log::info!(
                    "binlog GTID at {file}:{position} is '{g}' from {} ({})",
                    source.describe(),
                    passed.join("; ")
                );
            }
            (Some(g), Some(source))
        }
        Ok(None) => (None, None),
        Err(why) => {
            log::warn!(
                "no GTID could be had for binlog position {file}:{position} ({why}): LOG_BASED bookmarks at this position carry no gtid, and use_gtid will refuse them"
            );
            (None, None)
        }
    };
    BinlogCoords {
        file,
        position,
        gtid,
        gtid_source,
    }
}

/// Reads the current binlog file/position and the GTID at exactly that position, or None when
/// the binlog is off. The GTID variable is read between two reads of the position (again while
/// commits move it); when the binlog never stands still, MariaDB's `BINLOG_GTID_POS` says which
/// GTID goes with the last position read.
pub(crate) fn read_coords(conn: &mut Conn, server: &ServerInfo) -> Result<Option<BinlogCoords>> {
    let sql = status_sql(server);
    let mut at = match show_status(conn, server) {
        Ok(Some(at)) => at,
        Ok(None) => return Ok(None),
        Err(e) if super::errors::classify(&e) == super::errors::Class::Denied => {
            // Only LOG_BASED needs coordinates; the others read fine without them.
            log::info!(
                "snapshot: binlog coordinates unavailable ({sql} needs REPLICATION CLIENT / BINLOG MONITOR): fine for FULL_TABLE and INCREMENTAL"
            );
            return Ok(None);
        }
        Err(e) => return Err(Error::mysql(format!("snapshot: {sql}"), e)),
    };
    for _ in 0..STABLE_TRIES {
        let moment = moment_gtid(conn, server, &at);
        if !matches!(moment, GtidReading::Unusable(..)) {
            return Ok(Some(coords_with(at, &[moment])));
        }
        match show_status(conn, server).context(format!("snapshot: {sql}"))? {
            Some(now) => at = now,
            None => return Ok(None),
        }
    }
    let mut readings = vec![GtidReading::Unusable(
        match server.flavor {
            Flavor::Mariadb => GtidSource::GtidBinlogPos,
            Flavor::Mysql => GtidSource::GtidExecuted,
        },
        format!("the binlog kept moving while it was read ({STABLE_TRIES} tries)"),
    )];
    if server.flavor == Flavor::Mariadb {
        readings.insert(0, binlog_gtid_pos(conn, &at)?);
    }
    Ok(Some(coords_with(at, &readings)))
}

fn is_percona(conn: &mut Conn) -> bool {
    conn.query_first::<String, _>("SELECT @@version_comment")
        .ok()
        .flatten()
        .is_some_and(|c| c.to_ascii_lowercase().contains("percona"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn null_primary() -> GtidReading {
        GtidReading::Unusable(GtidSource::BinlogGtidPos, "gave NULL".into())
    }

    #[test]
    fn the_gtid_comes_from_the_first_source_that_has_one() {
        let moment = GtidReading::Found(GtidSource::GtidBinlogPos, "0-1-9".into());
        // The primary source answers: it wins.
        let primary = GtidReading::Found(GtidSource::BinlogGtidPos, "0-1-8".into());
        assert_eq!(
            choose_gtid(&[primary, moment.clone()]),
            Ok(Some((GtidSource::BinlogGtidPos, "0-1-8".to_string())))
        );
        // BINLOG_GTID_POS gave NULL: the variable read while the binlog stood still.
        assert_eq!(
            choose_gtid(&[null_primary(), moment]),
            Ok(Some((GtidSource::GtidBinlogPos, "0-1-9".to_string())))
        );
        // No GTID transaction yet is an answer, not a missing GTID.
        assert_eq!(
            choose_gtid(&[GtidReading::Found(GtidSource::BinlogGtidPos, String::new())]),
            Ok(Some((GtidSource::BinlogGtidPos, String::new())))
        );
        // MySQL prints sets over several lines.
        let mysql = GtidReading::Found(
            GtidSource::GtidExecuted,
            "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,\n4b2f9a1c-0000-11ee-8c99-0242ac120002:1"
                .into(),
        );
        assert_eq!(
            choose_gtid(&[mysql]),
            Ok(Some((
                GtidSource::GtidExecuted,
                "3e11fa47-71ca-11e1-9e33-c80aa9429562:1-5,4b2f9a1c-0000-11ee-8c99-0242ac120002:1"
                    .to_string()
            )))
        );
    }

    #[test]
    fn no_gtid_is_either_a_server_without_gtids_or_a_reason() {
        assert_eq!(choose_gtid(&[GtidReading::Off]), Ok(None));
        let moved = GtidReading::Unusable(GtidSource::GtidBinlogPos, "the binlog moved".into());
        let why = choose_gtid(&[null_primary(), moved]).unwrap_err();
        assert_eq!(
            why,
            "BINLOG_GTID_POS: gave NULL; @@gtid_binlog_pos: the binlog moved"
        );
        assert!(choose_gtid(&[]).is_err());
    }
}
