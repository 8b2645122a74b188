//! The row loop shared by every method: stream a query's rows, encode each into the output
//! buffer, and hand checkpoints to the caller at a steady cadence.
//!
//! Promises: the result set is streamed (never buffered whole); a checkpoint is taken only
//! after the buffer holding every row before it has been sent, so the bookmark the caller
//! sends next can never run ahead of the data. A reader stopped by a signal sends every record
//! it encoded, then takes a last checkpoint ([`StateLine::Final`]) at the last of them, so the
//! run's final STATE covers exactly the rows written (BATCH mode: exactly the rows of the
//! announced files, whose checkpoints were taken as each file was announced).

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mysql::Conn;

use crate::config::BatchConfig;
use crate::encode::{encode_cell, ColumnWarnings};
use crate::error::{Error, Result};
use crate::plan::StreamPlan;
use crate::singer::messages::RecordFrame;
use crate::sink::batch::BatchSink;
use crate::sink::record::{OutputSender, StateLine, BUFFER_BYTES};
use crate::source::wire::{Cells, OwnedRow, RowRef, Rows};

/// How often bookmarks are emitted.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Cadence {
    /// At least every this many rows.
    pub rows: u64,
    /// At least this often.
    pub interval: Duration,
}

/// Where and how a reader emits: shared by every job of a run.
#[derive(Clone, Copy)]
pub(crate) struct Emit<'a> {
    /// The writer.
    pub out: &'a OutputSender,
    /// Bookmark cadence.
    pub cadence: Cadence,
    /// `time_extracted` of every RECORD of the run.
    pub time_extracted: &'a str,
    /// Set when another job failed: stop soon.
    pub cancel: &'a AtomicBool,
    /// Opens a replacement connection when one drops mid-read.
    pub connector: &'a crate::source::connect::Connector,
    /// Reconnections allowed in a row without a row read in between.
    pub reconnects: u32,
    /// Live row counters for progress lines.
    pub progress: &'a super::progress::Progress,
    /// BATCH files instead of RECORD messages, when configured.
    pub batch: Option<&'a BatchConfig>,
}

/// What a finished read returns.
pub(crate) struct ReadOutcome {
    /// Rows written.
    pub rows: u64,
    /// The last row read (for the final bookmark).
    pub last_row: Option<OwnedRow>,
    /// The connection dropped after `rows` rows (all of them sent): resume after `last_row`.
    pub dropped: Option<Error>,
}

/// Runs `sql` and writes one RECORD per row. `checkpoint` is called with the last written row
/// every `cadence` (and when a signal stops the read), after its data was sent.
pub(crate) fn read_rows(
    conn: &mut Conn,
    sql: &str,
    plan: &StreamPlan,
    frame: &RecordFrame,
    emit: Emit<'_>,
    mut checkpoint: impl FnMut(&dyn Cells, StateLine) -> Result<()>,
) -> Result<ReadOutcome> {
    if let Some(cfg) = emit.batch {
        return read_rows_batch(conn, sql, plan, emit, cfg, checkpoint);
    }
    let Emit {
        out,
        cadence,
        cancel,
        ..
    } = emit;
    let ctx = || format!("stream '{}': reading rows", plan.stream_id);
    let mut result = match open_query(conn, sql, plan, emit)? {
        Ok(r) => r,
        Err(dropped) => return Ok(dropped),
    };
    let mut dropped = None;
    let encoders: Vec<_> = plan.columns.iter().map(|c| c.encoder).collect();
    let mut warnings = vec![ColumnWarnings::default(); encoders.len()];
    let mut buf = out.buffer();
    let mut rows = 0u64;
    let mut since_checkpoint = 0u64;
    let mut last_checkpoint = Instant::now();
    while let Some(row) = result.next() {
        let Some(row) = take_row(row, &ctx, &mut dropped)? else {
            break;
        };
        buf.extend_from_slice(frame.prefix());
        for (i, enc) in encoders.iter().enumerate() {
            buf.extend_from_slice(frame.key(i));
            encode_cell(*enc, row.cell(i), &mut buf, &mut warnings[i]);
        }
        buf.extend_from_slice(frame.suffix());
        rows += 1;
        since_checkpoint += 1;
        let due = since_checkpoint >= cadence.rows
            || (rows.is_multiple_of(1024) && last_checkpoint.elapsed() >= cadence.interval);
        if rows.is_multiple_of(1024) {
            emit.progress.add(&plan.stream_id, 1024);
            if let Err(stop) = stop_check(cancel) {
                let last = || checkpoint(&row, StateLine::Final);
                return Err(hand_over(stop, plan, &warnings, buf, emit, last));
            }
        }
        if buf.len() >= BUFFER_BYTES || due {
            plan.check_text(&warnings)?;
            emit.progress.add_bytes(&plan.stream_id, buf.len() as u64);
            out.send(std::mem::replace(&mut buf, out.buffer()))?;
        }
        if due {
            checkpoint(&row, StateLine::Now)?;
            since_checkpoint = 0;
            last_checkpoint = Instant::now();
        }
    }
    plan.check_text(&warnings)?;
    emit.progress.add_bytes(&plan.stream_id, buf.len() as u64);
    out.send(buf)?;
    plan.report_warnings(&warnings);
    Ok(ReadOutcome {
        rows,
        last_row: result.last_row(),
        dropped,
    })
}

/// A read stopping with `stop`. When a signal stopped it, the records in `buf` (complete, the
/// last one the row `last_checkpoint` records) are sent and then that checkpoint is taken, so
/// the final STATE covers them; the signal is returned. Any other stop (another job failed,
/// the run fails) drops them. An error while handing over replaces the stop.
fn hand_over(
    stop: Error,
    plan: &StreamPlan,
    warnings: &[ColumnWarnings],
    buf: Vec<u8>,
    emit: Emit<'_>,
    last_checkpoint: impl FnOnce() -> Result<()>,
) -> Error {
    if !matches!(stop, Error::Interrupted(_)) {
        return stop;
    }
    let handed = plan.check_text(warnings).and_then(|()| {
        emit.progress.add_bytes(&plan.stream_id, buf.len() as u64);
        emit.out.send(buf)?;
        last_checkpoint()
    });
    handed.err().unwrap_or(stop)
}

impl ReadOutcome {
    fn dropped(e: Error) -> ReadOutcome {
        ReadOutcome {
            rows: 0,
            last_row: None,
            dropped: Some(e),
        }
    }
}

/// The next row; None when the connection dropped (recorded in `dropped`: the rows read so far
/// are complete, they are sent, and the caller resumes after them); an error that cannot heal.
fn take_row<'r>(
    row: mysql::Result<RowRef<'r>>,
    ctx: &impl Fn() -> String,
    dropped: &mut Option<Error>,
) -> Result<Option<RowRef<'r>>> {
    match row {
        Ok(r) => Ok(Some(r)),
        Err(e) if crate::source::errors::connection_lost(&e) => {
            *dropped = Some(Error::mysql(ctx(), e));
            Ok(None)
        }
        Err(e) => Err(Error::mysql(ctx(), e)),
    }
}

/// Stops a read when another job failed or a signal asked the run to stop.
#[inline]
pub(crate) fn stop_check(cancel: &AtomicBool) -> Result<()> {
    if let Some(sig) = crate::interrupt::requested() {
        return Err(Error::Interrupted(sig));
    }
    if cancel.load(Ordering::Relaxed) {
        return Err(Error::Cancelled);
    }
    Ok(())
}

/// BATCH mode: rows go to files of `batch_size` rows; after each file is finished (synced and
/// renamed) its BATCH message is sent, then `checkpoint` with the file's last row, so a
/// bookmark never covers rows of an unfinished file. A stop discards the unfinished file: the
/// last checkpoint already covers exactly the announced files.
fn read_rows_batch(
    conn: &mut Conn,
    sql: &str,
    plan: &StreamPlan,
    emit: Emit<'_>,
    cfg: &BatchConfig,
    mut checkpoint: impl FnMut(&dyn Cells, StateLine) -> Result<()>,
) -> Result<ReadOutcome> {
    let ctx = || format!("stream '{}': reading rows", plan.stream_id);
    let mut result = match open_query(conn, sql, plan, emit)? {
        Ok(r) => r,
        Err(dropped) => return Ok(dropped),
    };
    let mut dropped = None;
    let mut warnings = vec![ColumnWarnings::default(); plan.columns.len()];
    let mut sink = BatchSink::new(cfg, plan);
    let mut rows = 0u64;
    while let Some(row) = result.next() {
        let Some(row) = take_row(row, &ctx, &mut dropped)? else {
            break;
        };
        sink.append(&row, &mut warnings)?;
        rows += 1;
        // A full file is announced even when a stop is due at this row.
        if sink.full() {
            plan.check_text(&warnings)?;
            if let Some(file) = sink.finish_file()? {
                emit.out.batch(file)?;
            }
            checkpoint(&row, StateLine::Now)?;
        }
        if rows.is_multiple_of(1024) {
            emit.progress.add(&plan.stream_id, 1024);
            stop_check(emit.cancel)?;
        }
    }
    plan.check_text(&warnings)?;
    if let Some(file) = sink.finish_file()? {
        emit.out.batch(file)?;
    }
    plan.report_warnings(&warnings);
    Ok(ReadOutcome {
        rows,
        last_row: result.last_row(),
        dropped,
    })
}

/// Starts streaming `sql`; a connection lost before the first row is a dropped read (resumed
/// by the caller on a new connection), any other error fails it.
fn open_query<'c>(
    conn: &'c mut Conn,
    sql: &str,
    plan: &StreamPlan,
    emit: Emit<'_>,
) -> Result<std::result::Result<Rows<'c>, ReadOutcome>> {
    log::debug!("stream '{}': {sql}", plan.stream_id);
    let ctx = || format!("stream '{}': reading rows", plan.stream_id);
    match Rows::query(conn, sql, emit.connector.plain()) {
        Ok(r) => Ok(Ok(r)),
        Err(e) if crate::source::errors::connection_lost(&e) => {
            Ok(Err(ReadOutcome::dropped(Error::mysql(ctx(), e))))
        }
        Err(e) => Err(Error::mysql(ctx(), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::ColumnKind;
    use crate::encode::Encoder;
    use crate::plan::{Method, PlannedColumn};

    #[test]
    fn invalid_text_names_the_column() {
        let plan = StreamPlan {
            stream_id: "db-t".into(),
            database: "db".into(),
            table: "t".into(),
            columns: vec![PlannedColumn {
                name: "name".into(),
                kind: ColumnKind::Text { max_chars: None },
                encoder: Encoder::Text,
                select_expr: "`name`".into(),
            }],
            key_properties: vec![],
            resume_key: vec![],
            key_index: None,
            method: Method::FullTable,
            replication_key: None,
            schema: crate::singer::messages::SchemaJson::from_value(&serde_json::json!({})),
            row_estimate: None,
        };
        let mut w = vec![ColumnWarnings::default()];
        assert!(plan.check_text(&w).is_ok());
        let mut out = Vec::new();
        crate::encode::encode_cell(Encoder::Text, Some(&[0xff]), &mut out, &mut w[0]);
        let e = plan.check_text(&w).unwrap_err().to_string();
        assert!(e.contains("stream 'db-t' column 'name'"), "{e}");
    }
}
