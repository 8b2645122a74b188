//! Sync: plan the selected streams, read them through one consistent snapshot, write Singer
//! messages.
//!
//! Data flow (ARCHITECTURE.md): plan -> snapshot set of N connections -> a rayon pool of N
//! workers, each owning one snapshot connection and taking jobs (a whole stream, or one chunk
//! of a big table) from a queue, biggest first -> encoded message buffers through a bounded
//! channel -> one writer thread owning stdout and the state.
//!
//! Promises:
//! - Messages of different streams interleave only at whole-message boundaries; each stream's
//!   SCHEMA precedes its records (for chunked tables the driver sends it before any chunk).
//! - The first failing job stops the others (they notice within 1024 rows) and is the error
//!   reported; STATE never covers rows that were not written.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use mysql::Conn;
use serde_json::Value;

use crate::catalog::discover::{for_each_table, TableInfo};
use crate::catalog::Catalog;
use crate::cdc::reader::CdcStream;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::{Method, StreamPlan};
use crate::read::rows::Cadence;
use crate::singer::time::{format_rfc3339, now_millis};
use crate::sink::record::{OutputSender, Writer};
use crate::source::connect::Connector;
use crate::source::snapshot::{self, BinlogCoords, SnapshotOptions};
use crate::state::{next_version, BinlogStart, Bookmark, FullTablePass, State};

use super::workers::{
    plan_chunks, queue_jobs, run_workers, ChunkPlan, Chunking, Load, RunCtx, StreamRun,
};

/// Runs a sync of `catalog` (every table when None) from `state`, writing to stdout.
pub(super) fn sync(config: &Config, catalog: Option<&Catalog>, state: State) -> Result<()> {
    sync_to(config, catalog, state, std::io::stdout())
}

/// Runs a sync writing Singer messages to `sink`.
///
/// A first pass reads every selected stream; LOG_BASED streams that turned out to need a
/// re-snapshot (a purged binlog found before reading, or a table that could no longer be followed
/// in the binlog) are then read again in a second pass, through a fresh snapshot of their own.
/// The run ends with a STATE line whatever happened, unless it failed.
pub(super) fn sync_to<W: std::io::Write + Send + 'static>(
    config: &Config,
    catalog: Option<&Catalog>,
    state: State,
    sink: W,
) -> Result<()> {
    if let Some(b) = &config.batch {
        crate::sink::batch::prepare_root(b)?;
    }
    let connector = Connector::new(config)?;
    let time_extracted = format_rfc3339(SystemTime::now(), 6);
    let full_table_pass = FullTablePass::begin(&state, now_millis());
    let (out, writer) = Writer::spawn(
        sink,
        state.clone(),
        Duration::from_secs(config.state_interval_s),
    );
    let progress = std::sync::Arc::new(crate::read::progress::Progress::default());
    // Dropping `stop_reporter` wakes and ends the reporter at once.
    let (stop_reporter, stopped) = crossbeam_channel::bounded::<()>(0);
    let reporter =
        progress.spawn_reporter(Duration::from_secs(config.progress_interval_s), stopped);
    let pass = Pass {
        config,
        catalog,
        connector: &connector,
        out: &out,
        progress: &progress,
        time_extracted: &time_extracted,
        full_table_pass,
    };
    let mut result = pass.run(&state, None);
    if let Ok(heal) = &result {
        if !heal.is_empty() {
            let mut healing = state.clone();
            for (id, b) in heal {
                healing.set_bookmark(id, b);
            }
            let ids: Vec<String> = heal.iter().map(|(id, _)| id.clone()).collect();
            log::info!(
                "re-snapshotting {} stream(s): {}",
                ids.len(),
                ids.join(", ")
            );
            result = pass.run(&healing, Some(&ids));
        }
    }
    if matches!(result, Ok(_) | Err(Error::Interrupted(_))) {
        // The run ends with the state its messages add up to (also when nothing moved).
        let _ = out.final_state();
    }
    drop(out);
    drop(stop_reporter);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    progress.end();
    let written = writer.finish();
    // A writer failure (e.g. a closed pipe) is the cause of any worker error that follows it.
    match (written, result) {
        (Err(w), _) => Err(w),
        (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(_)) => Ok(()),
    }
}

/// What every pass of a run shares.
struct Pass<'p> {
    config: &'p Config,
    catalog: Option<&'p Catalog>,
    connector: &'p Connector,
    out: &'p OutputSender,
    progress: &'p std::sync::Arc<crate::read::progress::Progress>,
    time_extracted: &'p str,
    full_table_pass: FullTablePass,
}

/// Streams to re-snapshot, with the bookmark that asks for it.
type Resnapshots = Vec<(String, Bookmark)>;

impl Pass<'_> {
    /// One pass: plan (only the streams in `only` when given), read every stream in its
    /// load through one consistent snapshot, then the binlog for LOG_BASED streams past their
    /// load. Returns the streams that need a re-snapshot.
    fn run(&self, state: &State, only: Option<&[String]>) -> Result<Resnapshots> {
        let config = self.config;
        let connector = self.connector;
        let mut conn = connector.connect("planning")?;
        let server = connector
            .server()
            .cloned()
            .ok_or_else(|| Error::runtime("server version unknown after connecting"))?;
        let databases = match self.catalog {
            Some(c) => catalog_databases(c),
            None => config.discovery_databases(),
        };
        let (planned, tables) = self.plan_streams(&mut conn, server.flavor, &databases)?;
        let mut plans = planned.plans;
        if let Some(only) = only {
            plans.retain(|p| only.contains(&p.stream_id));
        } else {
            self.skip_finished(state, &mut plans)?;
        }
        for id in planned.missing_log_based {
            if only.is_none_or(|o| o.contains(&id)) {
                self.table_gone(&id, state.bookmark(&id)?)?;
            }
        }
        // Only before the first pass: a later pass runs while this run's last BATCH messages
        // may still wait for the writer, their files still marked.
        if let (Some(b), None) = (&config.batch, only) {
            for p in &plans {
                crate::sink::batch::discard_unannounced(b, &p.stream_id)?;
            }
        }
        if plans.is_empty() {
            log::warn!("no stream is selected: nothing to sync");
        }
        for p in plans.iter().filter(|p| p.method == Method::LogBased) {
            if let Some(c) = p
                .columns
                .iter()
                .find(|c| !crate::cdc::values::supported(&c.kind, server.flavor))
            {
                let why = if c.kind == crate::catalog::types::ColumnKind::Spatial {
                    " on MySQL (only MariaDB's ST_AsGeoJSON text is reproduced)"
                } else {
                    ""
                };
                return Err(Error::usage(format!(
                    "stream '{}': column '{}' ({:?}) cannot be read from the binlog exactly yet{why}: deselect it or use FULL_TABLE/INCREMENTAL",
                    p.stream_id, c.name, c.kind
                )));
            }
        }
        let mut bookmarks = plans
            .iter()
            .map(|p| Ok((p.stream_id.clone(), state.bookmark(&p.stream_id)?)))
            .collect::<Result<HashMap<String, Bookmark>>>()?;
        purged_bookmarks(&mut conn, config, &plans, &mut bookmarks)?;
        // Resume the stream a previous run was in the middle of first.
        if let Some(current) = state.currently_syncing() {
            if let Some(pos) = plans.iter().position(|p| p.stream_id == current) {
                let p = plans.remove(pos);
                plans.insert(0, p);
            }
        }
        let max_workers = config
            .max_parallel_streams
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let chunking = Chunking::decide(config, &plans, &bookmarks, max_workers);
        drop(conn);
        self.read(&server, &tables, &plans, &bookmarks, chunking, max_workers)
    }

    /// Plans the selected streams as discovery hands their tables over, keeping only the
    /// tables LOG_BASED streams read later: a sync never holds every discovered table beside
    /// every plan.
    fn plan_streams(
        &self,
        conn: &mut Conn,
        flavor: crate::config::Flavor,
        databases: &[String],
    ) -> Result<(crate::plan::Plans, Vec<TableInfo>)> {
        let mut planner = crate::plan::Planner::new(self.catalog, &self.config.types)?;
        let mut tables = Vec::new();
        for_each_table(conn, flavor, databases, &self.config.types, |t| {
            if planner.table(&t)? {
                tables.push(t);
            }
            Ok(())
        })?;
        Ok((planner.finish()?, tables))
    }

    /// Resuming an interrupted run: its FULL_TABLE streams whose completion is in the state are
    /// not read again (see `crate::state::pass`).
    fn skip_finished(&self, state: &State, plans: &mut Vec<StreamPlan>) -> Result<()> {
        if !self.full_table_pass.resumed {
            return Ok(());
        }
        let mut finished = HashSet::new();
        for p in plans.iter().filter(|p| p.method == Method::FullTable) {
            if self
                .full_table_pass
                .finished(&state.bookmark(&p.stream_id)?)
            {
                finished.insert(p.stream_id.clone());
            }
        }
        if finished.is_empty() {
            return Ok(());
        }
        plans.retain(|p| p.method != Method::FullTable || !finished.contains(&p.stream_id));
        log::info!(
            "resuming an interrupted run: {} FULL_TABLE stream(s) it finished are not read again (the next run reads them)",
            finished.len()
        );
        for id in &finished {
            log::debug!("stream '{id}': finished by the interrupted run, skipped");
        }
        Ok(())
    }

    /// A selected LOG_BASED stream whose table no longer exists. Without a bookmark that is a
    /// catalog mistake. Else the table was dropped or renamed away: the first run to find it
    /// gone (the binlog reader did not see the DROP) starts a new, empty table version, so its
    /// rows go downstream too, and asks for a re-snapshot once the table is back.
    fn table_gone(&self, id: &str, bookmark: Bookmark) -> Result<()> {
        let stream = self
            .catalog
            .and_then(|c| c.streams.iter().find(|s| s.tap_stream_id == id));
        let (Some(stream), false) = (stream, bookmark.is_empty()) else {
            return Err(Error::usage(format!(
                "stream '{id}' is selected in the catalog but its table does not exist on the server (run --discover again)"
            )));
        };
        log::warn!("stream '{id}': its table no longer exists on the server: skipped until it is back (then it is read again as a new table version)");
        if bookmark.binlog().is_dropped() {
            return Ok(()); // emptied downstream by an earlier run
        }
        let version = next_version(bookmark.version(), now_millis());
        // The catalog keeps a selected LOG_BASED stream's schema as text.
        let mut schema: Value = stream
            .schema_text
            .as_deref()
            .and_then(|t| serde_json::from_str(t).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if let Some(p) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            p.insert(
                "_sdc_deleted_at".into(),
                serde_json::json!({"type": ["null", "string"], "format": "date-time"}),
            );
        }
        let keys = stream.key_properties.clone().unwrap_or_default();
        let mut msgs = crate::singer::messages::schema_message(
            id,
            &crate::singer::messages::SchemaJson::from_value(&schema),
            &keys,
            None,
        );
        msgs.extend(crate::singer::messages::activate_version_message(
            id, version,
        ));
        self.out.send(msgs)?;
        self.out.bookmark(id, bookmark.table_gone(version), None)
    }

    /// The worker connections: in one consistent snapshot of the tables in `loads` (with its
    /// binlog coordinates), or plain ones, with no lock of any kind, when nothing is loaded.
    fn connections(
        &self,
        server: &crate::source::connect::ServerInfo,
        loads: &[&StreamPlan],
        workers: usize,
    ) -> Result<(Option<BinlogCoords>, Vec<Conn>)> {
        let config = self.config;
        Ok(if loads.is_empty() {
            // Nothing is read as of one point in time: no snapshot, so no lock of any kind.
            if workers > 0 {
                log::info!("snapshot: not needed (no FULL_TABLE read or initial load): {workers} worker connection(s), no lock");
            }
            let conns = (0..workers)
                .map(|i| self.connector.connect(&format!("worker {}", i + 1)))
                .collect::<Result<Vec<_>>>()?;
            (None, conns)
        } else {
            // Only the tables read in the snapshot are locked, when a lock is needed at all.
            let table_ids: Vec<(String, String)> = loads
                .iter()
                .map(|p| (p.database.clone(), p.table.clone()))
                .collect();
            let snap = snapshot::open(
                self.connector,
                server,
                &SnapshotOptions {
                    workers: workers.max(1),
                    tables: &table_ids,
                    method: config.snapshot_method,
                    lock_timeout_s: config.snapshot_lock_timeout_s,
                    gtid: loads.iter().any(|p| p.method == Method::LogBased),
                },
            )?;
            (snap.coords, snap.conns)
        })
    }

    /// Reads `plans` through one consistent snapshot, then the binlog.
    fn read(
        &self,
        server: &crate::source::connect::ServerInfo,
        tables: &[crate::catalog::discover::TableInfo],
        plans: &[StreamPlan],
        bookmarks: &HashMap<String, Bookmark>,
        chunking: Vec<Chunking>,
        max_workers: usize,
    ) -> Result<Resnapshots> {
        let config = self.config;
        let out = self.out;
        let bookmark_of = |p: &StreamPlan| bookmarks.get(&p.stream_id).cloned().unwrap_or_default();
        let by_name: HashMap<(&str, &str), &crate::catalog::discover::TableInfo> = tables
            .iter()
            .map(|t| ((t.database.as_str(), t.name.as_str()), t))
            .collect();
        let table_of = |p: &StreamPlan| {
            by_name
                .get(&(p.database.as_str(), p.table.as_str()))
                .copied()
        };
        // Jobs for workers: every FULL_TABLE read (or its unfinished chunks) and INCREMENTAL
        // stream; LOG_BASED streams past their load only read the binlog.
        let is_load: Vec<bool> = plans
            .iter()
            .map(|p| full_load(p, &bookmark_of(p)))
            .collect();
        let loads: Vec<&StreamPlan> = plans
            .iter()
            .zip(&is_load)
            .filter_map(|(p, load)| load.then_some(p))
            .collect();
        let jobs_total: usize = plans
            .iter()
            .zip(&is_load)
            .zip(&chunking)
            .filter(|((p, load), _)| **load || p.method == Method::Incremental)
            .map(|((p, _), c)| c.jobs(p))
            .fold(0, usize::saturating_add);
        let workers = max_workers.min(jobs_total);
        let (coords, mut conns) = self.connections(server, &loads, workers)?;

        let (runs, chunk_plans) = self.stream_runs(
            plans,
            &bookmark_of,
            &table_of,
            chunking,
            coords.as_ref(),
            &mut conns,
        )?;

        let ctx = RunCtx {
            runs: &runs,
            out,
            cadence: Cadence {
                rows: config.state_interval_rows,
                interval: Duration::from_secs(config.state_interval_s),
            },
            time_extracted: self.time_extracted,
            cancel: AtomicBool::new(false),
            failure: Mutex::new(None),
            batch: config.batch.as_ref(),
            connector: self.connector,
            reconnects: config.connect_retries,
            progress: self.progress,
            pass_start: self.full_table_pass.start,
        };
        self.progress.expect(
            runs.iter()
                .filter(|r| r.load.is_some() || r.plan.method == Method::Incremental)
                .count(),
        );
        let jobs = queue_jobs(&ctx, chunk_plans, config.chunk_rows, conns.len() > 1)?;
        if !conns.is_empty() {
            run_workers(&ctx, jobs, &mut conns);
        }
        if let Some(e) = ctx.failure.lock().ok().and_then(|mut f| f.take()) {
            return Err(e);
        }
        // Every load of the run is done: a stop from here on (the binlog phase) leaves no pass
        // to resume, so the next run reads every FULL_TABLE stream again.
        out.full_table_pass_done()?;
        let mut cdc: Vec<CdcStream> = runs
            .iter()
            .filter(|r| r.plan.method == Method::LogBased && r.load.is_none())
            .map(|r| {
                let table = table_of(r.plan);
                CdcStream::new(
                    r.plan.clone(),
                    table,
                    r.bookmark.clone(),
                    self.time_extracted,
                )
            })
            .collect();
        drop(conns);
        if cdc.is_empty() {
            return Ok(Vec::new());
        }
        crate::cdc::reader::run(
            self.connector,
            server,
            &crate::cdc::reader::CdcOptions {
                server_id: config.server_id,
                use_gtid: config.use_gtid,
                reconnect_limit: config.connect_retries,
                auto_resnapshot: config.auto_resnapshot,
                types: &config.types,
                time_extracted: self.time_extracted,
            },
            &mut cdc,
            out,
        )?;
        Ok(cdc
            .into_iter()
            .filter(|s| s.resnapshot.is_some())
            .map(|s| (s.plan.stream_id.clone(), s.bookmark))
            .collect())
    }

    /// Every stream's run. Chunked loads are prepared (and new ones chunked) now, inside the
    /// snapshot, on the first connection; the others by the worker that reads them.
    fn stream_runs<'p>(
        &self,
        plans: &'p [StreamPlan],
        bookmark_of: &dyn Fn(&StreamPlan) -> Bookmark,
        table_of: &dyn Fn(&StreamPlan) -> Option<&'p crate::catalog::discover::TableInfo>,
        chunking: Vec<Chunking>,
        coords: Option<&BinlogCoords>,
        conns: &mut [Conn],
    ) -> Result<(Vec<StreamRun<'p>>, Vec<ChunkPlan>)> {
        let config = self.config;
        let mut runs: Vec<StreamRun<'_>> = Vec::with_capacity(plans.len());
        let mut chunk_plans: Vec<ChunkPlan> = Vec::with_capacity(plans.len());
        for (p, chunks) in plans.iter().zip(chunking) {
            let bookmark = bookmark_of(p);
            let load = if full_load(p, &bookmark) {
                let binlog_start = match p.method {
                    Method::LogBased => Some(cdc_start(
                        p,
                        &bookmark,
                        coords,
                        table_of(p)
                            .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                            .unwrap_or_default(),
                    )?),
                    _ => None,
                };
                Some(Load { binlog_start })
            } else {
                None
            };
            let mut run = StreamRun {
                plan: p,
                bookmark,
                load,
                full: None,
                chunks_left: AtomicUsize::new(0),
                rows: AtomicUsize::new(0),
            };
            chunk_plans.push(match chunks {
                Chunking::Whole => None,
                chunks => {
                    let conn = conns.first_mut().ok_or_else(|| {
                        Error::runtime("a chunked load without a worker connection")
                    })?;
                    run.full =
                        run.prepare(conn, config.batch.is_some(), self.full_table_pass.start)?;
                    match chunks {
                        Chunking::Recorded(recorded) => Some(recorded),
                        Chunking::ToPlan(chunk_rows) => {
                            let max = run.full.as_ref().and_then(|ft| ft.max_key());
                            plan_chunks(conn, p, max, chunk_rows)?
                        }
                        Chunking::Whole => None,
                    }
                }
            });
            runs.push(run);
        }
        Ok((runs, chunk_plans))
    }
}

/// LOG_BASED streams whose bookmarked binlog file the server has purged get a bookmark asking
/// for a re-snapshot (`auto_resnapshot`), or the run stops saying so. With `use_gtid` the file
/// name is only a hint (another primary names its files differently): the dump decides.
fn purged_bookmarks(
    conn: &mut Conn,
    config: &Config,
    plans: &[StreamPlan],
    bookmarks: &mut HashMap<String, Bookmark>,
) -> Result<()> {
    if config.use_gtid {
        return Ok(());
    }
    let mut available: Option<Option<Vec<String>>> = None;
    for p in plans.iter().filter(|p| p.method == Method::LogBased) {
        let Some(b) = bookmarks.get_mut(&p.stream_id) else {
            continue;
        };
        let Some(file) = b.binlog().log_file().map(str::to_string) else {
            continue;
        };
        let files = available.get_or_insert_with(|| crate::cdc::purge::available_files(conn));
        if !files
            .as_deref()
            .is_some_and(|f| crate::cdc::purge::is_purged(&file, f))
        {
            continue;
        }
        let why = format!("its bookmarked binlog file {file} was purged from the server");
        if !config.auto_resnapshot {
            return Err(Error::runtime(format!(
                "stream '{}': {why}: the changes since then are lost to LOG_BASED. Re-snapshot the stream (remove its bookmark from the state), or set auto_resnapshot to true to let the tap re-read it as a new table version",
                p.stream_id
            )));
        }
        log::warn!(
            "stream '{}': {why}: its table is re-read through a fresh snapshot as a new table version (auto_resnapshot)",
            p.stream_id
        );
        *b = b.resnapshot(&why, None);
    }
    Ok(())
}

/// Where a stream resumes, for its start line (empty when it starts from the beginning).
pub(super) fn resume_point(plan: &StreamPlan, bookmark: &Bookmark, loading: bool) -> String {
    if loading {
        if let Some(last) = bookmark.full_table().last_pk_fetched() {
            return format!(", resuming after key {}", Value::Object(last.clone()));
        }
        return String::new();
    }
    let value = bookmark.incremental().replication_key_value();
    match (plan.replication_key_name(), value) {
        (Some(k), Some(v)) => format!(", resuming at {k} >= {v}"),
        _ => String::new(),
    }
}

/// Whether a stream is (still) in a full table load: FULL_TABLE always, LOG_BASED until its
/// initial load completed with a binlog position to continue from.
pub(super) fn full_load(p: &StreamPlan, bookmark: &Bookmark) -> bool {
    match p.method {
        Method::FullTable => true,
        Method::Incremental => false,
        Method::LogBased => bookmark.needs_initial_load(),
    }
}

/// The binlog position a LOG_BASED stream's CDC starts from after its initial load: the one
/// already in its bookmark (an interrupted load), else this run's snapshot coordinates.
fn cdc_start(
    p: &StreamPlan,
    bookmark: &Bookmark,
    coords: Option<&BinlogCoords>,
    table_columns: Vec<String>,
) -> Result<BinlogStart> {
    if let Some(start) = bookmark.binlog_start() {
        return Ok(start);
    }
    let c = coords.ok_or_else(|| {
        Error::runtime(format!(
            "stream '{}': LOG_BASED needs the snapshot's binlog position: enable log_bin on the server and grant REPLICATION CLIENT (or BINLOG MONITOR)",
            p.stream_id
        ))
    })?;
    // The column order at the snapshot, for binlogs without column names (see cdc/ddl.rs).
    Ok(BinlogStart::new(
        c.file.clone(),
        c.position,
        c.gtid.clone(),
        table_columns,
    ))
}

/// The databases a catalog's selected streams live in.
pub(super) fn catalog_databases(c: &Catalog) -> Vec<String> {
    let mut dbs: Vec<String> = c
        .streams
        .iter()
        .filter(|s| s.selected)
        .filter_map(|s| s.database_name.clone())
        .collect();
    dbs.sort();
    dbs.dedup();
    dbs
}
