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

pub mod bookmark;
pub mod chunk;
pub mod full_table;
pub mod incremental;
pub mod output;
pub mod plan;
pub mod progress;
pub mod rows;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use mysql::Conn;
use serde_json::{Map, Value};

use crate::catalog::discover::discover_tables;
use crate::catalog::Catalog;
use crate::cdc::reader::CdcStream;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::singer::state::State;
use crate::singer::time::format_rfc3339;
use crate::source::connect::Connector;
use crate::source::snapshot::{self, BinlogCoords, SnapshotOptions};
use full_table::{ChunkWork, FullTable};
use output::{OutputSender, Writer};
use plan::{Method, StreamPlan};
use rows::{Cadence, Emit};

/// Runs a sync of `catalog` (every table when None) from `state`, writing to stdout.
pub fn sync(config: &Config, catalog: Option<&Catalog>, state: State) -> Result<()> {
    sync_to(config, catalog, state, std::io::stdout())
}

/// One unit of work for a worker.
enum Job {
    /// A whole stream (index into plans).
    Stream(usize),
    /// One chunk of a chunked FULL_TABLE stream.
    Chunk(usize, Box<ChunkWork>),
}

/// Per-stream shared state of a run.
struct StreamRun<'a> {
    plan: &'a StreamPlan,
    bookmark: Map<String, Value>,
    full: Option<FullTable<'a>>,
    chunks_left: AtomicUsize,
    rows: AtomicUsize,
}

/// Runs a sync writing Singer messages to `sink`.
pub fn sync_to<W: std::io::Write + Send + 'static>(
    config: &Config,
    catalog: Option<&Catalog>,
    state: State,
    sink: W,
) -> Result<()> {
    if let Some(b) = &config.batch {
        crate::batch::prepare_root(b)?;
    }
    let connector = Connector::new(config)?;
    let mut conn = connector.connect("planning")?;
    let server = connector
        .server()
        .cloned()
        .ok_or_else(|| Error::runtime("server version unknown after connecting"))?;
    let databases = match catalog {
        Some(c) => catalog_databases(c),
        None => config.discovery_databases(),
    };
    let tables = discover_tables(&mut conn, server.flavor, &databases, &config.types)?;
    let mut plans = plan::plan(catalog, &tables, &config.types)?;
    if let Some(b) = &config.batch {
        for p in &plans {
            crate::batch::discard_partials(b, &p.stream_id)?;
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

    // Chunk planning happens before the snapshot, on the planning connection: boundaries only
    // affect balance, never correctness, so they need not come from the snapshot.
    let mut chunk_plans: Vec<Option<Vec<(ChunkWork, bool)>>> = Vec::with_capacity(plans.len());
    for p in &plans {
        let bookmark = state.bookmark(&p.stream_id);
        let mut chunks = None;
        if full_load(p, &bookmark) && !p.resume_key.is_empty() {
            let ft = FullTable::prepare(&mut conn, p, bookmark)?;
            chunks = ft.recorded_chunks();
            let big = p.row_estimate.unwrap_or(0) > config.chunk_rows;
            if chunks.is_none() && max_workers > 1 && config.chunk_rows > 0 && big {
                if let Some(max) = ft.max_key() {
                    chunks =
                        chunk::plan_chunks(&mut conn, p, max, config.chunk_rows)?.map(|list| {
                            list.into_iter()
                                .enumerate()
                                .map(|(index, bounds)| {
                                    (
                                        ChunkWork {
                                            index,
                                            bounds,
                                            after: None,
                                        },
                                        false,
                                    )
                                })
                                .collect()
                        });
                }
            }
        }
        chunk_plans.push(chunks);
    }
    drop(conn);

    let jobs_total: usize = chunk_plans
        .iter()
        .map(|c| {
            c.as_ref()
                .map_or(1, |c| c.iter().filter(|(_, done)| !done).count().max(1))
        })
        .sum();
    let workers = max_workers.min(jobs_total).max(1);
    let table_ids: Vec<(String, String)> = plans
        .iter()
        .map(|p| (p.database.clone(), p.table.clone()))
        .collect();
    let snap = snapshot::open(
        &connector,
        &server,
        &SnapshotOptions {
            workers,
            tables: &table_ids,
            method: config.snapshot_method,
            lock_timeout_s: config.snapshot_lock_timeout_s,
        },
    )?;
    let coords = snap.coords.clone();
    let mut conns = snap.conns;

    // Prepare every stream inside the snapshot (the greatest key is read there).
    let mut runs: Vec<StreamRun<'_>> = Vec::with_capacity(plans.len());
    for p in &plans {
        let bookmark = state.bookmark(&p.stream_id);
        let full = if full_load(p, &bookmark) {
            let ft = FullTable::prepare(&mut conns[0], p, bookmark.clone())?
                .batch_mode(config.batch.is_some());
            Some(if p.method == Method::LogBased {
                ft.with_extra(cdc_start(
                    p,
                    &bookmark,
                    coords.as_ref(),
                    tables
                        .iter()
                        .find(|t| t.database == p.database && t.name == p.table)
                        .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
                        .unwrap_or_default(),
                )?)
            } else {
                ft
            })
        } else {
            None
        };
        runs.push(StreamRun {
            plan: p,
            bookmark,
            full,
            chunks_left: AtomicUsize::new(0),
            rows: AtomicUsize::new(0),
        });
    }

    let time_extracted = format_rfc3339(SystemTime::now(), 6);
    let cadence = Cadence {
        rows: config.state_interval_rows,
        interval: Duration::from_secs(config.state_interval_s),
    };
    let (out, writer) = Writer::spawn(sink, state);
    let progress = std::sync::Arc::new(progress::Progress::default());
    let stop_reporter = std::sync::Arc::new(AtomicBool::new(false));
    let reporter = progress.spawn_reporter(
        Duration::from_secs(config.progress_interval_s),
        stop_reporter.clone(),
    );
    let ctx = RunCtx {
        runs: &runs,
        out: &out,
        cadence,
        time_extracted: &time_extracted,
        cancel: AtomicBool::new(false),
        failure: Mutex::new(None),
        batch: config.batch.as_ref(),
        connector: &connector,
        reconnects: config.connect_retries,
        progress: &progress,
    };

    // Build the job queue, biggest first; chunked streams announce themselves now.
    let mut jobs: Vec<(u64, Job)> = Vec::new();
    let mut result = Ok(());
    for (i, chunks) in chunk_plans.into_iter().enumerate() {
        let run = &runs[i];
        match (chunks, &run.full) {
            (Some(chunks), Some(ft)) => {
                progress.start(&run.plan.stream_id, run.plan.row_estimate);
                if let Err(e) = announce_chunked(run, ft, &chunks, &out) {
                    result = Err(e);
                    break;
                }
                let todo: Vec<ChunkWork> = chunks
                    .into_iter()
                    .filter(|(_, done)| !done)
                    .map(|(w, _)| w)
                    .collect();
                run.chunks_left.store(todo.len(), Ordering::SeqCst);
                if todo.is_empty() {
                    if let Err(e) = ft.finish(&out) {
                        result = Err(e);
                        break;
                    }
                }
                for w in todo {
                    jobs.push((config.chunk_rows, Job::Chunk(i, Box::new(w))));
                }
            }
            (_, None) if run.plan.method == Method::LogBased => {} // binlog phase below
            _ => jobs.push((run.plan.row_estimate.unwrap_or(0), Job::Stream(i))),
        }
    }
    if result.is_ok() {
        if conns.len() > 1 {
            // Biggest first keeps the workers busy to the end; one worker keeps catalog order.
            jobs.sort_by_key(|j| std::cmp::Reverse(j.0));
        }
        let queue = Mutex::new(
            jobs.into_iter()
                .map(|(_, j)| j)
                .collect::<std::collections::VecDeque<_>>(),
        );
        if conns.len() == 1 {
            worker(&ctx, &queue, &mut conns[0]);
        } else {
            match rayon::ThreadPoolBuilder::new()
                .num_threads(conns.len())
                .thread_name(|i| format!("worker-{}", i + 1))
                .build()
            {
                Ok(pool) => pool.scope(|s| {
                    for conn in conns.iter_mut() {
                        let ctx = &ctx;
                        let queue = &queue;
                        s.spawn(move |_| worker(ctx, queue, conn));
                    }
                }),
                Err(e) => ctx.fail(Error::runtime(format!("cannot start worker threads: {e}"))),
            }
        }
        if let Some(e) = ctx.failure.lock().ok().and_then(|mut f| f.take()) {
            result = Err(e);
        }
    }
    if result.is_ok() {
        let mut cdc: Vec<CdcStream> = runs
            .iter()
            .filter(|r| r.plan.method == Method::LogBased && r.full.is_none())
            .map(|r| cdc_stream(r.plan, &tables, r.bookmark.clone()))
            .collect();
        if !cdc.is_empty() {
            drop(conns.drain(..));
            result = crate::cdc::reader::run(
                &connector,
                &server,
                config.server_id,
                config.use_gtid,
                config.connect_retries,
                &config.types,
                &mut cdc,
                &out,
                &time_extracted,
            );
        }
    }
    drop(ctx);
    if matches!(result, Err(Error::Interrupted(_))) {
        // Every complete message is already queued: repeat the state they add up to last.
        let _ = out.final_state();
    }
    drop(out);
    drop(conns);
    stop_reporter.store(true, Ordering::Relaxed);
    if let Some(r) = reporter {
        let _ = r.join();
    }
    let written = writer.finish();
    // A writer failure (e.g. a closed pipe) is the cause of any worker error that follows it.
    match (written, result) {
        (Err(w), _) => Err(w),
        (Ok(_), Err(e)) => Err(e),
        (Ok(_), Ok(())) => Ok(()),
    }
}

struct RunCtx<'r, 'a> {
    runs: &'r [StreamRun<'a>],
    out: &'r OutputSender,
    cadence: Cadence,
    time_extracted: &'r str,
    cancel: AtomicBool,
    failure: Mutex<Option<Error>>,
    batch: Option<&'r crate::config::BatchConfig>,
    connector: &'r Connector,
    reconnects: u32,
    progress: &'r progress::Progress,
}

impl RunCtx<'_, '_> {
    fn emit(&self) -> Emit<'_> {
        Emit {
            out: self.out,
            cadence: self.cadence,
            time_extracted: self.time_extracted,
            cancel: &self.cancel,
            batch: self.batch,
            connector: self.connector,
            reconnects: self.reconnects,
            progress: self.progress,
        }
    }
}

impl RunCtx<'_, '_> {
    /// Records the first real failure and stops the other workers.
    fn fail(&self, e: Error) {
        if matches!(e, Error::Cancelled) {
            return;
        }
        if let Ok(mut f) = self.failure.lock() {
            if f.is_none() {
                *f = Some(e);
            }
        }
        self.cancel.store(true, Ordering::SeqCst);
    }
}

fn worker(ctx: &RunCtx<'_, '_>, queue: &Mutex<std::collections::VecDeque<Job>>, conn: &mut Conn) {
    loop {
        if ctx.cancel.load(Ordering::SeqCst) {
            return;
        }
        if let Some(sig) = crate::interrupt::requested() {
            ctx.fail(Error::Interrupted(sig));
            return;
        }
        let job = match queue.lock() {
            Ok(mut q) => q.pop_front(),
            Err(_) => return,
        };
        let Some(job) = job else { return };
        if let Err(e) = run_job(ctx, &job, conn) {
            ctx.fail(e);
            return;
        }
    }
}

fn run_job(ctx: &RunCtx<'_, '_>, job: &Job, conn: &mut Conn) -> Result<()> {
    match job {
        Job::Stream(i) => {
            let run = &ctx.runs[*i];
            let plan = run.plan;
            log::info!(
                "stream '{}': starting {} sync of {} columns (about {} rows)",
                plan.stream_id,
                plan.method,
                plan.columns.len(),
                plan.row_estimate.map_or("?".to_string(), |n| n.to_string())
            );
            ctx.progress.start(&plan.stream_id, plan.row_estimate);
            let rows = match (&run.full, plan.method) {
                (Some(ft), _) => {
                    ft.start(ctx.out, None)?;
                    let rows = ft.read_all(conn, ctx.emit())?;
                    ft.finish(ctx.out)?;
                    rows
                }
                (None, Method::Incremental) => {
                    incremental::sync_incremental(conn, plan, run.bookmark.clone(), ctx.emit())?
                }
                (None, _) => {
                    return Err(Error::runtime(format!(
                        "stream '{}': no runner for {}",
                        plan.stream_id, plan.method
                    )))
                }
            };
            ctx.progress.finish(&plan.stream_id, rows);
        }
        Job::Chunk(i, work) => {
            let run = &ctx.runs[*i];
            let Some(ft) = &run.full else {
                return Err(Error::runtime("chunk of a stream that is not FULL_TABLE"));
            };
            let rows = ft.read_chunk(conn, ctx.emit(), work)?;
            let total = run.rows.fetch_add(rows as usize, Ordering::SeqCst) + rows as usize;
            // The last chunk to finish closes the stream, after every chunk's rows were sent.
            if run.chunks_left.fetch_sub(1, Ordering::SeqCst) == 1 {
                ft.finish(ctx.out)?;
                ctx.progress.finish(&run.plan.stream_id, total as u64);
            }
        }
    }
    Ok(())
}

fn announce_chunked(
    run: &StreamRun<'_>,
    ft: &FullTable<'_>,
    chunks: &[(ChunkWork, bool)],
    out: &OutputSender,
) -> Result<()> {
    log::info!(
        "stream '{}': starting FULL_TABLE sync of {} columns in {} chunks ({} left, about {} rows)",
        run.plan.stream_id,
        run.plan.columns.len(),
        chunks.len(),
        chunks.iter().filter(|(_, d)| !d).count(),
        run.plan
            .row_estimate
            .map_or("?".to_string(), |n| n.to_string())
    );
    ft.start(out, Some(chunks))
}

/// Whether a stream is (still) in a full table load: FULL_TABLE always, LOG_BASED until its
/// initial load completed with a binlog position to continue from.
fn full_load(p: &StreamPlan, bookmark: &Map<String, Value>) -> bool {
    match p.method {
        Method::FullTable => true,
        Method::Incremental => false,
        Method::LogBased => {
            let has_position =
                bookmark.get("log_file").is_some() && bookmark.get("log_pos").is_some();
            let loading = ["max_pk_values", "last_pk_fetched", "chunks"]
                .iter()
                .any(|k| bookmark.contains_key(*k));
            !has_position || loading
        }
    }
}

/// The binlog position a LOG_BASED stream's CDC starts from after its initial load: the one
/// already in its bookmark (an interrupted load), else this run's snapshot coordinates.
fn cdc_start(
    p: &StreamPlan,
    bookmark: &Map<String, Value>,
    coords: Option<&BinlogCoords>,
    table_columns: Vec<String>,
) -> Result<Map<String, Value>> {
    let mut m = Map::new();
    if let (Some(f), Some(pos)) = (bookmark.get("log_file"), bookmark.get("log_pos")) {
        m.insert("log_file".into(), f.clone());
        m.insert("log_pos".into(), pos.clone());
        for k in ["gtid", "columns"] {
            if let Some(v) = bookmark.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        return Ok(m);
    }
    let c = coords.ok_or_else(|| {
        Error::runtime(format!(
            "stream '{}': LOG_BASED needs the snapshot's binlog position: enable log_bin on the server and grant REPLICATION CLIENT (or BINLOG MONITOR)",
            p.stream_id
        ))
    })?;
    m.insert("log_file".into(), Value::from(c.file.clone()));
    m.insert("log_pos".into(), Value::from(c.position));
    if let Some(g) = &c.gtid {
        m.insert("gtid".into(), Value::from(g.clone()));
    }
    // The column order at the snapshot, for binlogs without column names (see cdc/ddl.rs).
    m.insert("columns".into(), Value::from(table_columns));
    Ok(m)
}

/// What the binlog reader needs about a stream's table.
fn cdc_stream(
    plan: &StreamPlan,
    tables: &[crate::catalog::discover::TableInfo],
    bookmark: Map<String, Value>,
) -> CdcStream {
    let table = tables
        .iter()
        .find(|t| t.database == plan.database && t.name == plan.table);
    CdcStream {
        plan: plan.clone(),
        table_columns: table
            .map(|t| t.columns.iter().map(|c| c.name.clone()).collect())
            .unwrap_or_default(),
        table_kinds: table
            .map(|t| t.columns.iter().map(|c| c.kind.clone()).collect())
            .unwrap_or_default(),
        decodings: crate::cdc::reader::decodings_for(plan, table),
        model: crate::cdc::reader::ModelState::from_bookmark(&bookmark),
        bookmark,
    }
}

/// The databases a catalog's selected streams live in.
fn catalog_databases(c: &Catalog) -> Vec<String> {
    let mut dbs: Vec<String> = c
        .streams
        .iter()
        .filter(|s| plan::stream_selected(s))
        .filter_map(|s| {
            s.stream_metadata()
                .and_then(|m| m.get("database-name"))
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
        })
        .collect();
    dbs.sort();
    dbs.dedup();
    dbs
}
