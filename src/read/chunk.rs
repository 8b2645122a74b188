//! Splitting a big table into key ranges that several workers read through one snapshot.
//!
//! Promises:
//! - Never a full scan: boundaries come from the first key column's MIN (an index seek), the
//!   greatest key, index seeks (`WHERE k >= probe ORDER BY k LIMIT 1`) and the optimizer's range
//!   estimates (`EXPLAIN`, which uses index dives).
//! - Any sorted list of boundaries partitions the table exactly (`lo < k1 <= hi`, compared in
//!   SQL with the column's own collation), so balance is the only thing estimates affect.
//! - Even splits of MIN..MAX are only candidates: gaps the optimizer estimates as too full are
//!   bisected, empty ones are merged away, so sparse or skewed keys (snowflake ids) still give
//!   balanced chunks.
//! - Integer first key columns are bisected; text keys are sampled by index seeks on probe
//!   prefixes. Other key types are read by one worker.

use mysql::prelude::Queryable;
use mysql::{Conn, Row};
use serde_json::{Map, Value};

use super::bookmark::{literal, value_from_cell};
use super::full_table::ChunkBounds;
use crate::catalog::types::ColumnKind;
use crate::error::{Error, MysqlContext, Result};
use crate::plan::StreamPlan;
use crate::source::query::{qualified, quote_ident, text_literal};
use crate::source::wire::Cells;

/// Most EXPLAINs one table's planning may issue.
const MAX_PROBES: usize = 20_000;

/// Plans chunks of about `chunk_rows` rows, or None when the table should be read whole.
pub(crate) fn plan_chunks(
    conn: &mut Conn,
    plan: &StreamPlan,
    max_key: &Map<String, Value>,
    chunk_rows: u64,
) -> Result<Option<Vec<ChunkBounds>>> {
    let Some(&first) = plan.resume_key.first() else {
        return Ok(None);
    };
    let col = &plan.columns[first];
    let Some(max) = max_key.get(&col.name).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let mut p = Planner {
        conn,
        plan,
        col: quote_ident(&col.name),
        kind: &col.kind,
        probes: 0,
    };
    let total = p.estimate(None, None)?;
    let Some(wanted) = chunk_count(total, chunk_rows) else {
        return Ok(None);
    };
    let candidates = match &col.kind {
        ColumnKind::Integer { .. } => {
            let (Some(min), Some(max)) = (p.min_int()?, int_of(max)) else {
                return Ok(None);
            };
            int_gaps(min, max, wanted, chunk_rows, &mut |lo, hi| {
                let rows = p.estimate(lo.map(int_value).as_ref(), Some(&int_value(hi)))?;
                Ok((rows, p.probes))
            })?
        }
        ColumnKind::Text { .. } | ColumnKind::Uuid => p.sample_text(max, wanted)?,
        _ => {
            log::info!(
                "stream '{}': key column '{}' ({:?}) is not chunked: one worker reads the table",
                plan.stream_id,
                col.name,
                col.kind
            );
            return Ok(None);
        }
    };
    let chunks = merge_gaps(candidates, chunk_rows);
    if chunks.len() < 2 {
        return Ok(None);
    }
    log::info!(
        "stream '{}': {} chunks of about {} rows (estimate {total} rows, {} index probes)",
        plan.stream_id,
        chunks.len(),
        chunk_rows,
        p.probes
    );
    Ok(Some(chunks))
}

/// How many chunks a table of `total` estimated rows is worth, or None when it is small enough
/// (at most one and a half chunks) to be read whole.
fn chunk_count(total: u64, chunk_rows: u64) -> Option<usize> {
    if total <= chunk_rows.saturating_mul(3) / 2 {
        return None;
    }
    Some((total / chunk_rows.max(1)).max(2) as usize)
}

/// An integer bookmark value (JSON number), widened.
fn int_of(v: &Value) -> Option<i128> {
    v.as_i64()
        .map(i128::from)
        .or_else(|| v.as_u64().map(i128::from))
}

/// An integer key as a bookmark value (null when no JSON integer holds it).
fn int_value(v: i128) -> Value {
    i64::try_from(v)
        .map(Value::from)
        .or_else(|_| u64::try_from(v).map(Value::from))
        .unwrap_or(Value::Null)
}

/// Candidate upper bounds splitting `min..=max` evenly, 16 per wanted chunk (64 to 4096),
/// ending at `max`.
fn int_candidates(min: i128, max: i128, wanted: usize) -> Vec<i128> {
    let steps = (wanted * 16).clamp(64, 4096) as i128;
    let mut c: Vec<i128> = (1..steps).map(|i| min + (max - min) * i / steps).collect();
    c.push(max);
    c.dedup();
    c
}

/// Estimates the rows with `lo < k <= hi`, answering `(rows, index probes issued so far)`.
type GapRows<'e> = dyn FnMut(Option<i128>, i128) -> Result<(u64, usize)> + 'e;

/// Gaps `(hi, estimated rows)` covering `min - 1 < k <= max`: the even candidates, each
/// bisected while it is too full.
fn int_gaps(
    min: i128,
    max: i128,
    wanted: usize,
    chunk_rows: u64,
    rows_in: &mut GapRows<'_>,
) -> Result<Vec<(Value, u64)>> {
    let mut gaps = Vec::new();
    let mut lo: Option<i128> = Some(min - 1);
    for hi in int_candidates(min, max, wanted) {
        bisect(lo, hi, chunk_rows, &mut gaps, 0, rows_in)?;
        lo = Some(hi);
    }
    Ok(gaps)
}

/// Appends (hi, estimated rows) gaps covering (lo, hi], bisecting gaps that are too full.
fn bisect(
    lo: Option<i128>,
    hi: i128,
    chunk_rows: u64,
    out: &mut Vec<(Value, u64)>,
    depth: u32,
    rows_in: &mut GapRows<'_>,
) -> Result<()> {
    let (rows, probes) = rows_in(lo, hi)?;
    if let Some(mid) = split_point(lo, hi, rows, chunk_rows, depth, probes) {
        bisect(lo, mid, chunk_rows, out, depth + 1, rows_in)?;
        return bisect(Some(mid), hi, chunk_rows, out, depth + 1, rows_in);
    }
    out.push((int_value(hi), rows));
    Ok(())
}

/// Where to cut the gap `lo < k <= hi` of `rows` estimated rows in two: None when it is small
/// enough, one key wide, open below, or the depth or probe budget is spent.
fn split_point(
    lo: Option<i128>,
    hi: i128,
    rows: u64,
    chunk_rows: u64,
    depth: u32,
    probes: usize,
) -> Option<i128> {
    let l = lo?;
    let width = hi - l;
    (rows > chunk_rows && width > 1 && depth < 40 && probes < MAX_PROBES).then_some(l + width / 2)
}

/// Greedy merge of consecutive gaps into chunks of at least `chunk_rows` estimated rows (the
/// last one takes the rest): the first chunk is open below, the last open above.
fn merge_gaps(gaps: Vec<(Value, u64)>, chunk_rows: u64) -> Vec<ChunkBounds> {
    let mut chunks: Vec<ChunkBounds> = Vec::new();
    let mut lo: Option<Value> = None;
    let mut acc = 0u64;
    let n = gaps.len();
    for (i, (hi, rows)) in gaps.into_iter().enumerate() {
        acc += rows;
        let last = i + 1 == n;
        if acc >= chunk_rows || last {
            chunks.push(ChunkBounds {
                lo: lo.clone(),
                hi: if last { None } else { Some(hi.clone()) },
            });
            lo = Some(hi);
            acc = 0;
        }
    }
    chunks
}

/// The `EXPLAIN` that estimates the rows with `lo < col <= hi` (literals already rendered; an
/// open end when None), through the key's index when it has a name.
fn estimate_sql(
    col: &str,
    table: &str,
    key_index: Option<&str>,
    lo: Option<&str>,
    hi: Option<&str>,
) -> String {
    let mut conds = Vec::new();
    if let Some(lo) = lo {
        conds.push(format!("{col} > {lo}"));
    }
    if let Some(hi) = hi {
        conds.push(format!("{col} <= {hi}"));
    }
    let index = key_index
        .map(|i| format!(" FORCE INDEX ({})", quote_ident(i)))
        .unwrap_or_default();
    format!(
        "EXPLAIN SELECT {col} FROM {table}{index}{w}",
        w = if conds.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", conds.join(" AND "))
        }
    )
}

/// The prefixes whose first keys sample a text key: each printable ASCII character, or each
/// pair of one and every third when more than a quarter as many chunks are wanted.
fn text_probes(wanted: usize) -> Vec<String> {
    let alphabet: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
    if wanted > alphabet.len() / 4 {
        return alphabet
            .iter()
            .flat_map(|a| alphabet.iter().step_by(3).map(move |b| format!("{a}{b}")))
            .collect();
    }
    alphabet.iter().map(|c| c.to_string()).collect()
}

/// Gaps `(hi, estimated rows)` between consecutive sampled keys (in the column's order), the
/// first open below and the last ending at `max`.
fn sample_gaps(
    mut sorted: Vec<Value>,
    max: &Value,
    rows_in: &mut dyn FnMut(Option<&Value>, &Value) -> Result<u64>,
) -> Result<Vec<(Value, u64)>> {
    sorted.dedup();
    if sorted.last() != Some(max) {
        sorted.push(max.clone());
    }
    let mut gaps = Vec::with_capacity(sorted.len());
    let mut lo: Option<Value> = None;
    for hi in sorted {
        let rows = rows_in(lo.as_ref(), &hi)?;
        gaps.push((hi.clone(), rows));
        lo = Some(hi);
    }
    Ok(gaps)
}

struct Planner<'a, 'c> {
    conn: &'c mut Conn,
    plan: &'a StreamPlan,
    col: String,
    kind: &'a ColumnKind,
    probes: usize,
}

impl Planner<'_, '_> {
    fn table(&self) -> String {
        qualified(&self.plan.database, &self.plan.table)
    }

    fn lit(&self, v: &Value) -> Result<String> {
        literal(self.kind, v).map_err(|e| {
            Error::runtime(format!(
                "stream '{}': chunk bound: {e}",
                self.plan.stream_id
            ))
        })
    }

    /// Optimizer estimate of rows with `lo < k1 <= hi`.
    fn estimate(&mut self, lo: Option<&Value>, hi: Option<&Value>) -> Result<u64> {
        self.probes += 1;
        let lo = lo.map(|v| self.lit(v)).transpose()?;
        let hi = hi.map(|v| self.lit(v)).transpose()?;
        let sql = estimate_sql(
            &self.col,
            &self.table(),
            self.plan.key_index.as_deref(),
            lo.as_deref(),
            hi.as_deref(),
        );
        let row: Option<Row> = self.conn.query_first(&sql).context(format!(
            "stream '{}': estimating a key range",
            self.plan.stream_id
        ))?;
        Ok(row
            .and_then(|r| r.get_opt::<Option<u64>, &str>("rows"))
            .and_then(|r| r.ok())
            .flatten()
            .unwrap_or(0))
    }

    fn min_int(&mut self) -> Result<Option<i128>> {
        let sql = format!("SELECT MIN({}) FROM {}", self.col, self.table());
        let v: Option<Option<String>> = self.conn.query_first(&sql).context(format!(
            "stream '{}': reading the smallest key",
            self.plan.stream_id
        ))?;
        Ok(v.flatten().and_then(|s| s.parse::<i128>().ok()))
    }

    /// The first key at or after `probe`, by an index seek.
    fn seek(&mut self, probe: &str) -> Result<Option<Value>> {
        self.probes += 1;
        let sql = format!(
            "SELECT {c} FROM {t} WHERE {c} >= {p} ORDER BY {c} LIMIT 1",
            c = self.col,
            t = self.table(),
            p = text_literal(probe)
        );
        let row: Option<Row> = self.conn.query_first(&sql).context(format!(
            "stream '{}': sampling the key",
            self.plan.stream_id
        ))?;
        Ok(row.and_then(|r| value_from_cell(self.kind, r.cell(0))))
    }

    /// Actual keys found by seeking probe prefixes, sorted by the server, with gap estimates.
    fn sample_text(&mut self, max: &Value, wanted: usize) -> Result<Vec<(Value, u64)>> {
        let mut keys: Vec<String> = Vec::new();
        for probe in text_probes(wanted) {
            if self.probes >= MAX_PROBES / 2 {
                break;
            }
            if let Some(Value::String(k)) = self.seek(&probe)? {
                keys.push(k);
            }
        }
        keys.sort();
        keys.dedup();
        if keys.is_empty() {
            return Ok(vec![]);
        }
        // Sort in the column's collation, by the server.
        let list: Vec<String> = keys.iter().map(|k| text_literal(k)).collect();
        let sql = format!(
            "SELECT {c} FROM {t} WHERE {c} IN ({l}) ORDER BY {c}",
            c = self.col,
            t = self.table(),
            l = list.join(", ")
        );
        let rows: Vec<Row> = self.conn.query(&sql).context(format!(
            "stream '{}': ordering key samples",
            self.plan.stream_id
        ))?;
        let sorted: Vec<Value> = rows
            .iter()
            .filter_map(|r| value_from_cell(self.kind, r.cell(0)))
            .collect();
        sample_gaps(sorted, max, &mut |lo, hi| self.estimate(lo, Some(hi)))
    }
}

#[cfg(test)]
mod tests;
