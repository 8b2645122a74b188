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
use crate::config::Flavor;
use crate::error::{Error, MysqlContext, Result};

/// Where the snapshot sits in the binary log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BinlogCoords {
    /// Binlog file name.
    pub file: String,
    /// Position in that file.
    pub position: u64,
    /// GTID set (MySQL `gtid_executed`) or position (MariaDB `gtid_binlog_pos`), when known.
    pub gtid: Option<String>,
}

/// How the snapshot was made consistent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SnapshotMethod {
    /// `FLUSH TABLES WITH READ LOCK`.
    GlobalLock,
    /// `FLUSH TABLES t... WITH READ LOCK`.
    TableLock,
    /// MariaDB/Percona `binlog_snapshot_*` status, no lock.
    LockFree,
    /// `LOCK TABLES t... READ`.
    LockTables,
    /// Independent per-worker snapshots (not consistent across workers).
    Independent,
    /// One worker: its own snapshot is consistent across tables without any lock.
    Single,
}

impl SnapshotMethod {
    /// Parses the `snapshot_method` config value (`auto` is None).
    pub fn parse(s: &str) -> Option<Option<SnapshotMethod>> {
        Some(match s {
            "auto" => None,
            "global_lock" => Some(SnapshotMethod::GlobalLock),
            "table_lock" => Some(SnapshotMethod::TableLock),
            "lock_free" => Some(SnapshotMethod::LockFree),
            "lock_tables" => Some(SnapshotMethod::LockTables),
            "independent" => Some(SnapshotMethod::Independent),
            _ => return None,
        })
    }

    fn describe(self) -> &'static str {
        match self {
            SnapshotMethod::GlobalLock => "FLUSH TABLES WITH READ LOCK",
            SnapshotMethod::TableLock => "FLUSH TABLES <tables> WITH READ LOCK",
            SnapshotMethod::LockFree => "lock-free (binlog_snapshot_file/position)",
            SnapshotMethod::LockTables => "LOCK TABLES <tables> READ",
            SnapshotMethod::Independent => {
                "independent per-worker snapshots (NOT consistent across tables)"
            }
            SnapshotMethod::Single => "one connection (no lock needed)",
        }
    }
}

/// Connections in one consistent snapshot.
pub struct SnapshotSet {
    /// One connection per worker, each inside its snapshot transaction.
    pub conns: Vec<Conn>,
    /// The snapshot's binlog coordinates (None when the binlog is off).
    pub coords: Option<BinlogCoords>,
    /// How consistency was obtained.
    pub method: SnapshotMethod,
}

/// Options of [`open`].
pub struct SnapshotOptions<'a> {
    /// Worker connections wanted.
    pub workers: usize,
    /// Tables the run reads (for table-level locks).
    pub tables: &'a [(String, String)],
    /// A forced method, or None for the automatic order.
    pub method: Option<SnapshotMethod>,
    /// Seconds a lock may be waited for.
    pub lock_timeout_s: u64,
}

/// Opens the worker connections and starts one consistent snapshot on all of them.
pub fn open(
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
            SnapshotMethod::LockFree => lock_free(&mut conns, server),
            SnapshotMethod::Independent => independent(&mut conns, server),
            SnapshotMethod::Single if server.flavor == Flavor::Mariadb => {
                lock_free(&mut conns, server)
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
                            c.gtid
                                .as_deref()
                                .map(|g| format!(" (GTID {g})"))
                                .unwrap_or_default()
                        ))
                        .unwrap_or_else(|| " (binlog off: no coordinates)".into())
                );
                if method == SnapshotMethod::Independent {
                    log::warn!("snapshot: snapshot_method is 'independent': tables are read at different points in time");
                }
                return Ok(SnapshotSet {
                    conns,
                    coords,
                    method,
                });
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
            Flavor::Mariadb => lock_free(&mut conns, server)?,
            Flavor::Mysql => independent(&mut conns, server)?,
        };
        return Ok(SnapshotSet {
            conns,
            coords,
            method: SnapshotMethod::Single,
        });
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

fn lock_free(conns: &mut [Conn], server: &ServerInfo) -> Result<Option<BinlogCoords>> {
    for attempt in 0..10 {
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
            let (file, position) = seen.swap_remove(0);
            if file.is_empty() {
                return Ok(None);
            }
            let gtid = if server.flavor == Flavor::Mariadb {
                let g: Option<Option<String>> = conns[0]
                    .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.as_str(), position))
                    .context("snapshot: BINLOG_GTID_POS")?;
                g.flatten().filter(|g| !g.is_empty())
            } else {
                None
            };
            return Ok(Some(BinlogCoords {
                file,
                position,
                gtid,
            }));
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

/// Reads the current binlog file/position and GTID set, or None when the binlog is off.
pub fn read_coords(conn: &mut Conn, server: &ServerInfo) -> Result<Option<BinlogCoords>> {
    let sql = if server.flavor == Flavor::Mysql && server.at_least(8, 4) {
        "SHOW BINARY LOG STATUS"
    } else {
        "SHOW MASTER STATUS"
    };
    let row: Option<mysql::Row> = match conn.query_first(sql) {
        Ok(r) => r,
        Err(mysql::Error::MySqlError(e)) if matches!(e.code, 1227 | 1044 | 1045) => {
            // Only LOG_BASED needs coordinates; the others read fine without them.
            log::info!(
                "snapshot: binlog coordinates unavailable ({sql} needs REPLICATION CLIENT / BINLOG MONITOR): fine for FULL_TABLE and INCREMENTAL"
            );
            return Ok(None);
        }
        Err(e) => return Err(Error::mysql(format!("snapshot: {sql}"), e)),
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let file: String = row.get(0).unwrap_or_default();
    let position: u64 = row.get(1).unwrap_or(0);
    let gtid = match server.flavor {
        Flavor::Mariadb => conn
            .query_first::<String, _>("SELECT @@GLOBAL.gtid_binlog_pos")
            .context("snapshot: reading gtid_binlog_pos")?,
        Flavor::Mysql => conn
            .query_first::<String, _>("SELECT @@GLOBAL.gtid_executed")
            .ok()
            .flatten(),
    }
    .map(|g| g.replace('\n', ""))
    .filter(|g| !g.is_empty());
    Ok(Some(BinlogCoords {
        file,
        position,
        gtid,
    }))
}

fn is_percona(conn: &mut Conn) -> bool {
    conn.query_first::<String, _>("SELECT @@version_comment")
        .ok()
        .flatten()
        .is_some_and(|c| c.to_ascii_lowercase().contains("percona"))
}
