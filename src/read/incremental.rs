//! INCREMENTAL: rows whose replication key is at or past the bookmark, in key order.
//!
//! State (pipelinewise-compatible): `replication_key` and `replication_key_value` (the value
//! as it appears in RECORDs, except decimals, which stay exact strings). Rows equal to the
//! bookmark are read again (`>=`), so a row committed with the same key value after the last
//! run is never missed. Changing the replication key resets the bookmark. Rows whose key is
//! NULL are read only by the first run (no bookmark yet); later runs cannot see them.

use mysql::Conn;
use serde_json::Value;

use super::bookmark::{literal, value_from_cell};
use super::rows::{read_rows, Emit};
use crate::error::{Error, Result};
use crate::plan::StreamPlan;
use crate::singer::messages::{schema_message, RecordFrame};
use crate::sink::record::StateLine;
use crate::source::query::{qualified, quote_ident};
use crate::source::wire::Cells;
use crate::state::Bookmark;

/// Syncs one INCREMENTAL stream.
pub(crate) fn sync_incremental(
    conn: &mut Conn,
    plan: &StreamPlan,
    mut bookmark: Bookmark,
    emit: Emit<'_>,
) -> Result<u64> {
    let out = emit.out;
    let id = plan.stream_id.as_str();
    let (Some(rk_idx), Some(rk)) = (plan.replication_key, plan.replication_key_name()) else {
        return Err(Error::usage(format!(
            "stream '{id}': INCREMENTAL needs a replication-key"
        )));
    };
    let rk_col = &plan.columns[rk_idx];
    if bookmark.start_incremental(rk) {
        log::info!("stream '{id}': replication key changed to '{rk}': starting from the beginning");
    }

    out.send(schema_message(
        id,
        &plan.schema,
        &plan.key_properties,
        Some(&[rk.to_string()]),
    ))?;

    let columns: Vec<&str> = plan
        .columns
        .iter()
        .map(|c| c.select_expr.as_str())
        .collect();
    let qrk = quote_ident(rk);
    let select = |from: Option<&Value>| -> Result<String> {
        let mut sql = format!(
            "SELECT {} FROM {}",
            columns.join(", "),
            qualified(&plan.database, &plan.table)
        );
        if let Some(v) = from {
            let lit = literal(&rk_col.kind, v).map_err(|e| {
                Error::usage(format!("state: stream '{id}': replication_key_value: {e}"))
            })?;
            sql.push_str(&format!(" WHERE {qrk} >= {lit}"));
        }
        sql.push_str(&format!(" ORDER BY {qrk}"));
        Ok(sql)
    };
    let level = emit.progress.stream_level();
    match bookmark.incremental().replication_key_value() {
        Some(v) => log::log!(level, "stream '{id}': INCREMENTAL from {rk} >= {v}"),
        None => log::log!(
            level,
            "stream '{id}': INCREMENTAL from the beginning (no bookmark)"
        ),
    }
    out.bookmark_with(id, bookmark.clone(), Some(id), StateLine::Coalesce)?;

    let names: Vec<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
    let frame = RecordFrame::new(id, &names, None, emit.time_extracted);
    let mut from = bookmark.incremental().replication_key_value().cloned();
    let mut total = 0u64;
    let mut attempts = 0u32;
    loop {
        let sql = select(from.as_ref())?;
        let outcome = read_rows(conn, &sql, plan, &frame, emit, |row, line| {
            if let Some(v) = value_from_cell(&rk_col.kind, row.cell(rk_idx)) {
                let mut b = bookmark.clone();
                b.advance_replication_key(v);
                out.bookmark_with(id, b, Some(id), line)?;
            }
            Ok(())
        })?;
        total += outcome.rows;
        if let Some(v) = outcome
            .last_row
            .as_ref()
            .and_then(|row| value_from_cell(&rk_col.kind, row.cell(rk_idx)))
        {
            bookmark.advance_replication_key(v.clone());
            from = Some(v);
        }
        let Some(e) = outcome.dropped else { break };
        attempts = if outcome.rows > 0 { 1 } else { attempts + 1 };
        if attempts > emit.reconnects.max(1) {
            return Err(e);
        }
        // Rows equal to the last value are read again (`>=`): duplicates, never a gap.
        log::warn!(
            "stream '{id}': {e}; reconnecting to resume at {rk} >= {}",
            from.as_ref()
                .map_or("the start".to_string(), |v| v.to_string())
        );
        *conn = emit
            .connector
            .connect(&format!("stream '{id}' (reconnect)"))?;
    }
    out.bookmark_with(id, bookmark, None, StateLine::Coalesce)?;
    Ok(total)
}
