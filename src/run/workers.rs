//! The worker pool: the job queue (whole streams, or chunks of big tables, biggest first), one
//! worker per snapshot connection, and what each job reads. The first failure stops the others.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use mysql::Conn;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::plan::{Method, StreamPlan};
use crate::read::full_table::{ChunkWork, FullTable};
use crate::read::rows::{Cadence, Emit};
use crate::sink::record::OutputSender;
use crate::source::connect::Connector;
use crate::state::Bookmark;

use super::sync::{full_load, resume_point};

/// A stream's chunks (with whether each is done), when it is read in chunks.
pub(super) type ChunkPlan = Option<Vec<(ChunkWork, bool)>>;

/// One unit of work for a worker.
pub(super) enum Job {
    /// A whole stream (index into plans).
    Stream(usize),
    /// One chunk of a chunked FULL_TABLE stream.
    Chunk(usize, Box<ChunkWork>),
}

/// Per-stream shared state of a run.
pub(super) struct StreamRun<'a> {
    pub(super) plan: &'a StreamPlan,
    pub(super) bookmark: Bookmark,
    /// The stream is (still) in a full table load this run.
    pub(super) load: Option<Load>,
    /// A chunked load, prepared before its chunks are queued. An unchunked load is prepared by
    /// the worker that reads it, on its own snapshot connection, just before the read: the
    /// greatest key is read once, right before the rows (the table is opened once, and the
    /// queries of many small tables spread over the workers).
    pub(super) full: Option<FullTable<'a>>,
    pub(super) chunks_left: AtomicUsize,
    pub(super) rows: AtomicUsize,
}

/// A full table load to run.
pub(super) struct Load {
    /// LOG_BASED: where the binlog read continues once the load is done.
    pub(super) binlog_start: Option<crate::state::BinlogStart>,
}

impl<'a> StreamRun<'a> {
    /// Prepares the stream's full table load on `conn` (reads its greatest key there).
    pub(super) fn prepare(
        &self,
        conn: &mut Conn,
        batch: bool,
        pass_start: u64,
    ) -> Result<Option<FullTable<'a>>> {
        let Some(load) = &self.load else {
            return Ok(None);
        };
        let ft = FullTable::prepare(conn, self.plan, self.bookmark.clone(), pass_start)?
            .batch_mode(batch);
        Ok(Some(match &load.binlog_start {
            Some(start) => ft.with_binlog_start(start.clone()),
            None => ft,
        }))
    }
}

/// The smallest piece a table below `chunk_rows` is split into for idle workers: below this,
/// a second connection's query costs about what it saves.
pub(super) const MIN_SPLIT_ROWS: u64 = 100_000;

/// Chunks per worker when a table is split for idle workers.
const CHUNKS_PER_WORKER: u64 = 4;

/// How a stream's load is split into jobs.
pub(super) enum Chunking {
    /// One job (not a load, no usable key, or too small to chunk).
    Whole,
    /// The chunks an interrupted run recorded, with whether each is done.
    Recorded(Vec<(ChunkWork, bool)>),
    /// A big table, chunked inside the snapshot once its greatest key is read there, into
    /// chunks of about this many rows.
    ToPlan(u64),
}

impl Chunking {
    /// How each stream's load is split, decided from the bookmarks and the row estimates (no
    /// query). A table above `chunk_rows` is split into chunks of `chunk_rows`; when that
    /// leaves workers without a job, the biggest tables left whole are split further, into
    /// pieces of at least [`MIN_SPLIT_ROWS`], so every worker has one (each piece planned as
    /// a few chunks, for balance).
    pub(super) fn decide(
        config: &Config,
        plans: &[StreamPlan],
        bookmarks: &HashMap<String, Bookmark>,
        max_workers: usize,
    ) -> Vec<Chunking> {
        let chunking_on = max_workers > 1 && config.chunk_rows > 0;
        let mut chunking: Vec<Chunking> = plans
            .iter()
            .map(|p| {
                let bookmark = bookmarks.get(&p.stream_id).cloned().unwrap_or_default();
                if !full_load(p, &bookmark) || p.resume_key.is_empty() {
                    return Chunking::Whole;
                }
                if let Some(chunks) = FullTable::recorded_chunks(&bookmark) {
                    return Chunking::Recorded(chunks);
                }
                if resumes_whole(&bookmark) {
                    log::info!(
                        "stream '{}': resuming a read by one worker after its last key, not chunked",
                        p.stream_id
                    );
                    return Chunking::Whole;
                }
                let big = p.row_estimate.unwrap_or(0) > config.chunk_rows;
                if chunking_on && big {
                    Chunking::ToPlan(config.chunk_rows)
                } else {
                    Chunking::Whole
                }
            })
            .collect();
        if chunking_on {
            split_for_idle_workers(plans, bookmarks, &mut chunking, max_workers);
        }
        chunking
    }

    /// Jobs it makes (for a table still to chunk: its estimate over its chunk size).
    pub(super) fn jobs(&self, plan: &StreamPlan) -> usize {
        match self {
            Chunking::Whole => 1,
            Chunking::Recorded(c) => c.iter().filter(|(_, done)| !done).count().max(1),
            Chunking::ToPlan(chunk_rows) => {
                let rows = plan.row_estimate.unwrap_or(0);
                usize::try_from(rows.div_ceil((*chunk_rows).max(1)))
                    .map_or(usize::MAX, |n| n.max(1))
            }
        }
    }
}

/// A load read whole by one worker and interrupted: it resumes after its last written key, so
/// it is never chunked (chunks planned now would start from the table's first key and send
/// again every row written before the interruption).
fn resumes_whole(bookmark: &Bookmark) -> bool {
    bookmark.full_table().last_pk_fetched().is_some()
}

/// Splits the biggest loads left whole while the run has fewer jobs than workers.
fn split_for_idle_workers(
    plans: &[StreamPlan],
    bookmarks: &HashMap<String, Bookmark>,
    chunking: &mut [Chunking],
    max_workers: usize,
) {
    let none = Bookmark::default();
    let bookmark = |p: &StreamPlan| bookmarks.get(&p.stream_id).unwrap_or(&none);
    let is_job = |p: &StreamPlan| full_load(p, bookmark(p)) || p.method == Method::Incremental;
    let jobs: usize = plans
        .iter()
        .zip(chunking.iter())
        .filter(|(p, _)| is_job(p))
        .map(|(p, c)| c.jobs(p))
        .fold(0, usize::saturating_add);
    let mut idle = max_workers.saturating_sub(jobs);
    let mut whole: Vec<usize> = (0..plans.len())
        .filter(|&i| matches!(chunking[i], Chunking::Whole) && !plans[i].resume_key.is_empty())
        .filter(|&i| is_job(&plans[i]) && plans[i].method != Method::Incremental)
        .filter(|&i| !resumes_whole(bookmark(&plans[i])))
        .collect();
    whole.sort_by_key(|&i| std::cmp::Reverse(plans[i].row_estimate.unwrap_or(0)));
    for i in whole {
        let rows = plans[i].row_estimate.unwrap_or(0);
        let pieces = usize::try_from(rows / MIN_SPLIT_ROWS)
            .unwrap_or(usize::MAX)
            .min(idle + 1);
        if pieces < 2 {
            break;
        }
        // Four chunks per worker fed: chunks are planned from estimates, so a worker that
        // drew short ones takes another instead of waiting for the last long one to end.
        let chunk = rows.div_ceil(pieces as u64 * CHUNKS_PER_WORKER);
        chunking[i] = Chunking::ToPlan(chunk.max(MIN_SPLIT_ROWS / CHUNKS_PER_WORKER));
        idle -= pieces - 1;
    }
}

/// Chunks of a big table below its greatest key `max` (read inside the snapshot), or None when
/// it is read whole. Boundaries come from index seeks and `EXPLAIN` estimates.
pub(super) fn plan_chunks(
    conn: &mut Conn,
    plan: &StreamPlan,
    max: Option<&crate::state::KeyValues>,
    chunk_rows: u64,
) -> Result<ChunkPlan> {
    let Some(max) = max else {
        return Ok(None);
    };
    Ok(
        crate::read::chunk::plan_chunks(conn, plan, max, chunk_rows)?.map(|list| {
            list.into_iter()
                .enumerate()
                .map(|(index, bounds)| {
                    let work = ChunkWork {
                        index,
                        bounds,
                        after: None,
                    };
                    (work, false)
                })
                .collect()
        }),
    )
}

/// The job queue, biggest first when several workers share it (one worker keeps catalog
/// order); chunked streams announce themselves now.
pub(super) fn queue_jobs(
    ctx: &RunCtx<'_, '_>,
    chunk_plans: Vec<ChunkPlan>,
    chunk_rows: u64,
    parallel: bool,
) -> Result<Mutex<std::collections::VecDeque<Job>>> {
    let mut jobs: Vec<(u64, Job)> = Vec::new();
    for (i, chunks) in chunk_plans.into_iter().enumerate() {
        let run = &ctx.runs[i];
        match (chunks, &run.full) {
            (Some(chunks), Some(ft)) => {
                ctx.progress
                    .start(&run.plan.stream_id, run.plan.row_estimate);
                announce_chunked(run, ft, &chunks, ctx.out)?;
                let todo: Vec<ChunkWork> = chunks
                    .into_iter()
                    .filter(|(_, done)| !done)
                    .map(|(w, _)| w)
                    .collect();
                run.chunks_left.store(todo.len(), Ordering::SeqCst);
                if todo.is_empty() {
                    ft.finish(ctx.out)?;
                }
                for w in todo {
                    jobs.push((chunk_rows, Job::Chunk(i, Box::new(w))));
                }
            }
            (_, None) if run.load.is_none() && run.plan.method == Method::LogBased => {} // binlog phase
            _ => jobs.push((run.plan.row_estimate.unwrap_or(0), Job::Stream(i))),
        }
    }
    if parallel {
        jobs.sort_by_key(|j| std::cmp::Reverse(j.0));
    }
    Ok(Mutex::new(jobs.into_iter().map(|(_, j)| j).collect()))
}

/// Runs the jobs on one worker per snapshot connection; the first failure is in `ctx.failure`.
pub(super) fn run_workers(
    ctx: &RunCtx<'_, '_>,
    queue: Mutex<std::collections::VecDeque<Job>>,
    conns: &mut [Conn],
) {
    if conns.len() == 1 {
        worker(ctx, &queue, &mut conns[0]);
        return;
    }
    match rayon::ThreadPoolBuilder::new()
        .num_threads(conns.len())
        .thread_name(|i| format!("worker-{}", i + 1))
        .build()
    {
        Ok(pool) => pool.scope(|s| {
            for conn in conns.iter_mut() {
                let queue = &queue;
                s.spawn(move |_| worker(ctx, queue, conn));
            }
        }),
        Err(e) => ctx.fail(Error::runtime(format!("cannot start worker threads: {e}"))),
    }
}

pub(super) struct RunCtx<'r, 'a> {
    pub(super) runs: &'r [StreamRun<'a>],
    pub(super) out: &'r OutputSender,
    pub(super) cadence: Cadence,
    pub(super) time_extracted: &'r str,
    pub(super) cancel: AtomicBool,
    pub(super) failure: Mutex<Option<Error>>,
    pub(super) batch: Option<&'r crate::config::BatchConfig>,
    pub(super) connector: &'r Connector,
    pub(super) reconnects: u32,
    pub(super) progress: &'r crate::read::progress::Progress,
    /// The full table pass this run belongs to (see `crate::state::pass`): every load's
    /// version is at least this.
    pub(super) pass_start: u64,
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
            log::log!(
                ctx.progress.stream_level(),
                "stream '{}': starting {} sync of {} columns (about {} rows){}",
                plan.stream_id,
                plan.method,
                plan.columns.len(),
                plan.row_estimate.map_or("?".to_string(), |n| n.to_string()),
                resume_point(plan, &run.bookmark, run.load.is_some())
            );
            ctx.progress.start(&plan.stream_id, plan.row_estimate);
            let prepared;
            let full = match &run.full {
                Some(ft) => Some(ft),
                None => {
                    prepared = run.prepare(conn, ctx.batch.is_some(), ctx.pass_start)?;
                    prepared.as_ref()
                }
            };
            let rows = match (full, plan.method) {
                (Some(ft), _) => {
                    ft.start(ctx.out, None)?;
                    let rows = ft.read_all(conn, ctx.emit())?;
                    ft.finish(ctx.out)?;
                    rows
                }
                (None, Method::Incremental) => crate::read::incremental::sync_incremental(
                    conn,
                    plan,
                    run.bookmark.clone(),
                    ctx.emit(),
                )?,
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

/// Logs a chunked stream's start and sends its SCHEMA (before any chunk is read).
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::{ColumnKind, IntWidth};
    use crate::encode::Encoder;
    use crate::plan::{Method, PlannedColumn};

    fn plan(id: &str, rows: u64, method: Method) -> StreamPlan {
        let id_column = PlannedColumn {
            name: "id".into(),
            kind: ColumnKind::Integer {
                width: IntWidth::Big,
                unsigned: false,
            },
            encoder: Encoder::Number,
            select_expr: "`id`".into(),
        };
        StreamPlan {
            method,
            ..StreamPlan::for_test(id, vec![id_column], Some(rows))
        }
    }

    fn decide(chunk_rows: u64, workers: usize, plans: &[StreamPlan]) -> Vec<Option<u64>> {
        decide_from(chunk_rows, workers, plans, &HashMap::new())
    }

    fn decide_from(
        chunk_rows: u64,
        workers: usize,
        plans: &[StreamPlan],
        bookmarks: &HashMap<String, Bookmark>,
    ) -> Vec<Option<u64>> {
        let mut cfg = serde_json::Map::new();
        cfg.insert("host".into(), "h".into());
        cfg.insert("user".into(), "u".into());
        cfg.insert("chunk_rows".into(), chunk_rows.into());
        let config = Config::from_map(cfg).unwrap();
        Chunking::decide(&config, plans, bookmarks, workers)
            .into_iter()
            .map(|c| match c {
                Chunking::ToPlan(rows) => Some(rows),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn idle_workers_split_the_biggest_tables_left_whole() {
        let one = [plan("a", 985_842, Method::FullTable)];
        // Below chunk_rows, alone on two workers: two pieces.
        // Two workers fed, four chunks each.
        assert_eq!(decide(1_000_000, 2, &one), vec![Some(123_231)]);
        assert_eq!(decide(1_000_000, 4, &one), vec![Some(61_616)]);
        // One worker, chunking off, or too small to split: whole.
        assert_eq!(decide(1_000_000, 1, &one), vec![None]);
        assert_eq!(decide(0, 2, &one), vec![None]);
        let small = [plan("a", 150_000, Method::FullTable)];
        assert_eq!(decide(1_000_000, 2, &small), vec![None]);
        // Pieces never below MIN_SPLIT_ROWS.
        let mid = [plan("a", 250_000, Method::FullTable)];
        assert_eq!(decide(1_000_000, 8, &mid), vec![Some(31_250)]);
        // Enough jobs already: nothing more is split.
        let two = [
            plan("a", 900_000, Method::FullTable),
            plan("b", 800_000, Method::FullTable),
        ];
        assert_eq!(decide(1_000_000, 2, &two), vec![None, None]);
        // The biggest whole table takes the idle workers; a big one keeps chunk_rows;
        // INCREMENTAL streams are jobs but never split.
        let mixed = [
            plan("inc", 5_000_000, Method::Incremental),
            plan("big", 3_000_000, Method::FullTable),
            plan("b", 400_000, Method::FullTable),
            plan("c", 600_000, Method::FullTable),
        ];
        assert_eq!(
            decide(1_000_000, 8, &mixed),
            vec![None, Some(1_000_000), None, Some(50_000)]
        );
    }

    #[test]
    fn a_whole_read_in_progress_is_never_chunked() {
        // Below chunk_rows (split for idle workers) and above it (chunked).
        let plans = [
            plan("a", 985_842, Method::FullTable),
            plan("b", 3_000_000, Method::FullTable),
        ];
        assert_eq!(
            decide(1_000_000, 6, &plans),
            vec![Some(82_154), Some(1_000_000)]
        );
        let mut in_progress = Bookmark::default();
        let mut key = crate::state::KeyValues::new();
        key.insert("id".into(), 42.into());
        in_progress.fetched_up_to(key);
        let with = |id: &str| HashMap::from([(format!("db-{id}"), in_progress.clone())]);
        assert_eq!(
            decide_from(1_000_000, 6, &plans, &with("a")),
            vec![None, Some(1_000_000)]
        );
        // `b`, read whole, is one job: `a` takes the other five workers.
        assert_eq!(
            decide_from(1_000_000, 6, &plans, &with("b")),
            vec![Some(49_293), None]
        );
    }
}
