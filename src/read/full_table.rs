//! FULL_TABLE: the whole table, in key order, resumable after the last written key, with a
//! table version that survives an interrupted run.
//!
//! State (pipelinewise-compatible, the transitions in `crate::state`): while in progress the
//! bookmark holds `version`, `max_pk_values` and `last_pk_fetched`; when done, `version` and
//! `initial_full_table_complete: true`. A run that finds `max_pk_values` (or
//! `last_pk_fetched`) in its bookmark resumes with the same version, so its final
//! ACTIVATE_VERSION never deletes rows written before the interruption.
//!
//! A table read in chunks (key ranges read by several workers) also keeps `chunks`: each with
//! its bounds, `done`, or its own `last_pk_fetched`. A resumed run reuses those bounds, skips
//! finished chunks and resumes the others after their last key.
//!
//! ACTIVATE_VERSION is sent before the first ever full sync of a stream (so the target creates
//! the table and shows rows as they arrive) and at the end of every completed full sync. It is
//! not sent at the start of later syncs: that would empty the target's table until the reload
//! finishes.

use mysql::prelude::Queryable;
use mysql::{Conn, Row};
use serde_json::Value;

use super::bookmark::{literal, value_from_cell};
use super::rows::{read_rows, Emit};
use crate::error::{Error, MysqlContext, Result};
use crate::plan::StreamPlan;
use crate::singer::messages::{activate_version_message, schema_message, RecordFrame};
use crate::singer::time::now_millis;
use crate::sink::record::{OutputSender, StateLine};
use crate::source::query::{qualified, quote_ident, tuple_compare};
use crate::source::wire::Cells;
use crate::state::{BinlogStart, Bookmark, ChunkProgress, KeyValues};

/// Bounds of one chunk on the first key column: `lo < key1 <= hi` (open ends when None).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChunkBounds {
    /// Exclusive lower bound.
    pub lo: Option<Value>,
    /// Inclusive upper bound.
    pub hi: Option<Value>,
}

/// A chunk to read, with where to resume inside it.
#[derive(Clone, Debug)]
pub(crate) struct ChunkWork {
    /// Index in the stream's chunk list.
    pub index: usize,
    /// Its bounds.
    pub bounds: ChunkBounds,
    /// Resume after this key (from state).
    pub after: Option<KeyValues>,
}

/// One FULL_TABLE sync of a stream, prepared.
pub(crate) struct FullTable<'a> {
    plan: &'a StreamPlan,
    /// The stream's bookmark at the start of the run.
    bookmark: Bookmark,
    version: u64,
    in_progress: bool,
    first_ever: bool,
    key_cols: Vec<String>,
    max_pk: Option<KeyValues>,
    empty: bool,
    activate: bool,
    /// A LOG_BASED re-snapshot (the bookmark asked for it).
    resnapshot: bool,
    /// LOG_BASED: where the binlog read continues once the load is done.
    binlog_start: Option<BinlogStart>,
    /// The run's full table pass (`crate::state::pass`).
    pass_start: u64,
}

impl<'a> FullTable<'a> {
    /// LOG_BASED: the binlog position CDC starts from once the initial load is done, kept in
    /// every bookmark of the load (so a resumed load still starts CDC at the first snapshot's
    /// position).
    pub(crate) fn with_binlog_start(mut self, start: BinlogStart) -> Self {
        self.binlog_start = Some(start);
        self
    }

    /// In BATCH mode no ACTIVATE_VERSION is sent: SDK targets load BATCH rows without a table
    /// version, so an ACTIVATE_VERSION would make them delete the rows just loaded.
    pub(crate) fn batch_mode(mut self, batch: bool) -> Self {
        self.activate = !batch;
        self
    }

    /// Decides the version (at least `pass_start`, the run's full table pass) and bounds from
    /// the bookmark (reading the greatest key when needed).
    pub(crate) fn prepare(
        conn: &mut Conn,
        plan: &'a StreamPlan,
        bookmark: Bookmark,
        pass_start: u64,
    ) -> Result<Self> {
        let load = bookmark.full_table();
        let in_progress = load.in_progress();
        let first_ever = !load.initial_load_complete();
        let version = load.load_version(now_millis(), pass_start);
        let resnapshot = bookmark.binlog().resnapshot_reason().is_some();
        let key_cols: Vec<String> = plan
            .resume_key
            .iter()
            .map(|&i| quote_ident(&plan.columns[i].name))
            .collect();
        let mut max_pk = None;
        let mut empty = false;
        if !key_cols.is_empty() {
            max_pk = match load.max_pk_values() {
                Some(m) if in_progress && !m.is_empty() => Some(m.clone()),
                _ => read_max_key(conn, plan, &key_cols)?,
            };
            empty = max_pk.is_none();
        }
        Ok(FullTable {
            plan,
            bookmark,
            version,
            in_progress,
            first_ever,
            key_cols,
            max_pk,
            empty,
            activate: true,
            resnapshot,
            binlog_start: None,
            pass_start,
        })
    }

    /// Whether the table can be resumed (and chunked) by key.
    pub(crate) fn resumable(&self) -> bool {
        !self.key_cols.is_empty()
    }

    /// Chunks recorded in `bookmark` by an interrupted chunked run, with their progress (read
    /// without the server: a resumed run reuses them as they are).
    pub(crate) fn recorded_chunks(bookmark: &Bookmark) -> Option<Vec<(ChunkWork, bool)>> {
        let load = bookmark.full_table();
        if !load.in_progress() {
            return None;
        }
        let chunks = load.chunks()?;
        Some(
            chunks
                .iter()
                .enumerate()
                .map(|(index, c)| {
                    let work = ChunkWork {
                        index,
                        bounds: ChunkBounds {
                            lo: c.lo().cloned(),
                            hi: c.hi().cloned(),
                        },
                        after: c.last_pk_fetched().cloned(),
                    };
                    (work, c.done())
                })
                .collect(),
        )
    }

    /// The in-progress bookmark, with `chunks` when chunked.
    fn progress(&self, chunks: Option<&[(ChunkWork, bool)]>) -> Bookmark {
        let mut b = self.bookmark.full_load(
            self.version,
            self.max_pk.as_ref(),
            self.binlog_start.as_ref(),
        );
        if let Some(chunks) = chunks {
            b.set_chunks(
                chunks
                    .iter()
                    .map(|(w, done)| {
                        ChunkProgress::new(
                            w.bounds.lo.clone(),
                            w.bounds.hi.clone(),
                            *done,
                            w.after.clone(),
                        )
                    })
                    .collect(),
            );
        } else if self.in_progress && self.resumable() {
            if let Some(last) = self.bookmark.full_table().last_pk_fetched() {
                b.fetched_up_to(last.clone());
            }
        }
        b
    }

    /// Sends SCHEMA, the first ACTIVATE_VERSION when due, and the in-progress bookmark.
    pub(crate) fn start(
        &self,
        out: &OutputSender,
        chunks: Option<&[(ChunkWork, bool)]>,
    ) -> Result<()> {
        let id = &self.plan.stream_id;
        let mut msgs = schema_message(id, &self.plan.schema, &self.plan.key_properties, None);
        // A re-snapshot in BATCH mode cannot end with an ACTIVATE_VERSION (it would delete the
        // BATCH rows): it starts with one, so the rows it replaces are gone before it loads.
        let activate_first = if self.activate {
            self.first_ever
        } else {
            self.resnapshot
        };
        if activate_first && !self.in_progress {
            msgs.extend(activate_version_message(id, self.version));
        }
        out.send(msgs)?;
        if self.in_progress {
            log::info!(
                "stream '{id}': resuming FULL_TABLE version {}",
                self.version
            );
        }
        out.bookmark_with(id, self.progress(chunks), Some(id), StateLine::Coalesce)
    }

    /// Reads the whole table (unchunked), resuming after `last_pk_fetched` when in progress.
    pub(crate) fn read_all(&self, conn: &mut Conn, emit: Emit<'_>) -> Result<u64> {
        if self.empty {
            return Ok(0);
        }
        let after = if self.in_progress {
            self.bookmark.full_table().last_pk_fetched().cloned()
        } else {
            None
        };
        if !self.resumable() && self.in_progress {
            log::info!(
                "stream '{}': no usable key to resume by; re-reading the whole table with version {}",
                self.plan.stream_id, self.version
            );
        }
        let id = self.plan.stream_id.as_str();
        let base = self.progress(None);
        self.read(conn, emit, None, after.as_ref(), |row, line| {
            let mut b = base.clone();
            b.fetched_up_to(last_key(self.plan, row));
            emit.out.bookmark_with(id, b, Some(id), line)
        })
    }

    /// Reads one chunk; progress goes to the writer as chunk updates.
    pub(crate) fn read_chunk(
        &self,
        conn: &mut Conn,
        emit: Emit<'_>,
        work: &ChunkWork,
    ) -> Result<u64> {
        let id = self.plan.stream_id.as_str();
        let out = emit.out;
        let rows = self.read(
            conn,
            emit,
            Some(&work.bounds),
            work.after.as_ref(),
            |row, line| {
                let last = Some(last_key(self.plan, row));
                out.chunk_with(id, work.index, last, false, line)
            },
        )?;
        out.chunk(id, work.index, None, true)?;
        Ok(rows)
    }

    /// Reads rows after `after` (within `chunk`), reconnecting and resuming after the last row
    /// read when the connection drops mid-read.
    fn read(
        &self,
        conn: &mut Conn,
        emit: Emit<'_>,
        chunk: Option<&ChunkBounds>,
        after: Option<&KeyValues>,
        checkpoint: impl FnMut(&dyn Cells, StateLine) -> Result<()>,
    ) -> Result<u64> {
        let plan = self.plan;
        let names: Vec<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
        let frame = RecordFrame::new(
            &plan.stream_id,
            &names,
            Some(self.version),
            emit.time_extracted,
        );
        let resumable = self.resumable();
        let mut checkpoint = checkpoint;
        let mut after = after.cloned();
        let mut total = 0u64;
        let mut attempts = 0u32;
        loop {
            let sql = self.select_sql(chunk, after.as_ref())?;
            let outcome = read_rows(conn, &sql, plan, &frame, emit, |row, line| {
                if resumable {
                    checkpoint(row, line)?;
                }
                Ok(())
            })?;
            total += outcome.rows;
            let Some(e) = outcome.dropped else {
                return Ok(total);
            };
            if !resumable {
                return Err(Error::runtime(format!(
                    "stream '{}' has no key to resume by after the connection dropped ({e}): run again to re-read it",
                    plan.stream_id
                )));
            }
            attempts = if outcome.rows > 0 { 1 } else { attempts + 1 };
            if attempts > emit.reconnects.max(1) {
                return Err(e);
            }
            if let Some(row) = &outcome.last_row {
                after = Some(last_key(plan, row));
            }
            log::warn!(
                "stream '{}': {e}; reconnecting to resume after {}. The rest of this stream is read in a new transaction, not the run's snapshot (for LOG_BASED streams the binlog replay from the snapshot's position makes it consistent)",
                plan.stream_id,
                after.as_ref().map_or("the start".to_string(), |a| Value::Object(a.clone()).to_string())
            );
            *conn = emit
                .connector
                .connect(&format!("stream '{}' (reconnect)", plan.stream_id))?;
        }
    }

    /// The SELECT for this sync, after `after`, within `chunk`, bounded by `max_pk_values`.
    fn select_sql(&self, chunk: Option<&ChunkBounds>, after: Option<&KeyValues>) -> Result<String> {
        let plan = self.plan;
        let mut where_parts = Vec::new();
        if let Some(max) = &self.max_pk {
            where_parts.push(tuple_compare(
                &self.key_cols,
                &key_literals(plan, max, "max_pk_values")?,
                "<=",
            ));
        }
        if let Some(last) = after {
            where_parts.push(tuple_compare(
                &self.key_cols,
                &key_literals(plan, last, "last_pk_fetched")?,
                ">",
            ));
        }
        if let Some(bounds) = chunk {
            let first = &plan.columns[plan.resume_key[0]];
            let lit = |v: &Value| {
                literal(&first.kind, v).map_err(|e| {
                    Error::usage(format!(
                        "state: stream '{}': chunk bound: {e}",
                        plan.stream_id
                    ))
                })
            };
            if let Some(lo) = &bounds.lo {
                where_parts.push(format!("{} > {}", self.key_cols[0], lit(lo)?));
            }
            if let Some(hi) = &bounds.hi {
                where_parts.push(format!("{} <= {}", self.key_cols[0], lit(hi)?));
            }
        }
        let columns: Vec<&str> = plan
            .columns
            .iter()
            .map(|c| c.select_expr.as_str())
            .collect();
        let mut sql = format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            qualified(&plan.database, &plan.table)
        );
        if !where_parts.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(
                &where_parts
                    .iter()
                    .map(|p| format!("({p})"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            );
        }
        if self.resumable() {
            sql.push_str(" ORDER BY ");
            sql.push_str(&self.key_cols.join(", "));
        }
        Ok(sql)
    }

    /// Sends the final ACTIVATE_VERSION and the completed bookmark.
    pub(crate) fn finish(&self, out: &OutputSender) -> Result<()> {
        let id = &self.plan.stream_id;
        let done = self
            .bookmark
            .load_complete(self.version, self.binlog_start.as_ref());
        if self.activate {
            out.send(activate_version_message(id, self.version))?;
        }
        out.load_complete(id, done, self.pass_start)
    }

    /// The greatest key (bounds chunk planning).
    pub(crate) fn max_key(&self) -> Option<&KeyValues> {
        self.max_pk.as_ref()
    }
}

/// The key of a row as a bookmark object.
fn last_key(plan: &StreamPlan, row: &dyn Cells) -> KeyValues {
    plan.resume_key
        .iter()
        .map(|&i| {
            let c = &plan.columns[i];
            (
                c.name.clone(),
                value_from_cell(&c.kind, row.cell(i)).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn key_literals(plan: &StreamPlan, values: &KeyValues, what: &str) -> Result<Vec<String>> {
    plan.resume_key
        .iter()
        .map(|&i| {
            let c = &plan.columns[i];
            let v = values.get(&c.name).ok_or_else(|| {
                Error::usage(format!(
                    "state: stream '{}': {what} has no value for key column '{}' (state from another catalog? remove the stream's bookmark to start over)",
                    plan.stream_id, c.name
                ))
            })?;
            literal(&c.kind, v).map_err(|e| Error::usage(format!("state: stream '{}': {what}.{}: {e}", plan.stream_id, c.name)))
        })
        .collect()
}

/// The greatest key now in the table, or None when it is empty.
fn read_max_key(
    conn: &mut Conn,
    plan: &StreamPlan,
    key_cols: &[String],
) -> Result<Option<KeyValues>> {
    let exprs: Vec<&str> = plan
        .resume_key
        .iter()
        .map(|&i| plan.columns[i].select_expr.as_str())
        .collect();
    let desc: Vec<String> = key_cols.iter().map(|c| format!("{c} DESC")).collect();
    let sql = format!(
        "SELECT {} FROM {} ORDER BY {} LIMIT 1",
        exprs.join(", "),
        qualified(&plan.database, &plan.table),
        desc.join(", ")
    );
    let row: Option<Row> = conn.query_first(&sql).context(format!(
        "stream '{}': reading the greatest key",
        plan.stream_id
    ))?;
    Ok(row.map(|r| {
        plan.resume_key
            .iter()
            .enumerate()
            .map(|(pos, &i)| {
                let c = &plan.columns[i];
                (
                    c.name.clone(),
                    value_from_cell(&c.kind, r.cell(pos)).unwrap_or(Value::Null),
                )
            })
            .collect()
    }))
}
