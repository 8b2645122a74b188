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
use crate::encode::cell;
use crate::error::{Error, MysqlContext, Result};
use crate::plan::StreamPlan;
use crate::source::query::{qualified, quote_ident, text_literal};

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
    if total <= chunk_rows.saturating_mul(3) / 2 {
        return Ok(None);
    }
    let wanted = (total / chunk_rows.max(1)).max(2) as usize;
    let candidates =
        match &col.kind {
            ColumnKind::Integer { .. } => {
                let (Some(min), Some(max)) = (
                    p.min_int()?,
                    max.as_i64()
                        .map(i128::from)
                        .or_else(|| max.as_u64().map(i128::from)),
                ) else {
                    return Ok(None);
                };
                let steps = (wanted * 16).clamp(64, 4096) as i128;
                let mut c: Vec<i128> = (1..steps).map(|i| min + (max - min) * i / steps).collect();
                c.push(max);
                c.dedup();
                let mut gaps = Vec::new();
                let mut lo: Option<i128> = Some(min - 1);
                for hi in c {
                    p.bisect(lo, hi, chunk_rows, &mut gaps, 0)?;
                    lo = Some(hi);
                }
                gaps
            }
            ColumnKind::Text { .. } | ColumnKind::Uuid => p.sample_text(max, wanted)?,
            _ => {
                log::info!(
                "stream '{}': key column '{}' ({:?}) is not chunked: one worker reads the table",
                plan.stream_id, col.name, col.kind
            );
                return Ok(None);
            }
        };
    // Greedy merge of consecutive gaps up to chunk_rows each.
    let mut chunks: Vec<ChunkBounds> = Vec::new();
    let mut lo: Option<Value> = None;
    let mut acc = 0u64;
    let n = candidates.len();
    for (i, (hi, rows)) in candidates.into_iter().enumerate() {
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
        let mut conds = Vec::new();
        if let Some(lo) = lo {
            conds.push(format!("{} > {}", self.col, self.lit(lo)?));
        }
        if let Some(hi) = hi {
            conds.push(format!("{} <= {}", self.col, self.lit(hi)?));
        }
        let index = self
            .plan
            .key_index
            .as_deref()
            .map(|i| format!(" FORCE INDEX ({})", quote_ident(i)))
            .unwrap_or_default();
        let sql = format!(
            "EXPLAIN SELECT {c} FROM {t}{index}{w}",
            c = self.col,
            t = self.table(),
            w = if conds.is_empty() {
                String::new()
            } else {
                format!(" WHERE {}", conds.join(" AND "))
            }
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

    /// Appends (hi, estimated rows) gaps covering (lo, hi], bisecting gaps that are too full.
    fn bisect(
        &mut self,
        lo: Option<i128>,
        hi: i128,
        chunk_rows: u64,
        out: &mut Vec<(Value, u64)>,
        depth: u32,
    ) -> Result<()> {
        let to_value = |v: i128| -> Value {
            i64::try_from(v)
                .map(Value::from)
                .or_else(|_| u64::try_from(v).map(Value::from))
                .unwrap_or(Value::Null)
        };
        let rows = self.estimate(lo.map(to_value).as_ref(), Some(&to_value(hi)))?;
        let width = hi - lo.unwrap_or(hi - 1);
        if let (Some(l), true) = (
            lo,
            rows > chunk_rows && width > 1 && depth < 40 && self.probes < MAX_PROBES,
        ) {
            let mid = l + width / 2;
            self.bisect(lo, mid, chunk_rows, out, depth + 1)?;
            return self.bisect(Some(mid), hi, chunk_rows, out, depth + 1);
        }
        out.push((to_value(hi), rows));
        Ok(())
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
        Ok(row.and_then(|r| value_from_cell(self.kind, cell(&r, 0))))
    }

    /// Actual keys found by seeking probe prefixes, sorted by the server, with gap estimates.
    fn sample_text(&mut self, max: &Value, wanted: usize) -> Result<Vec<(Value, u64)>> {
        let alphabet: Vec<char> = (0x20u8..0x7f).map(char::from).collect();
        let mut keys: Vec<String> = Vec::new();
        let mut probes: Vec<String> = alphabet.iter().map(|c| c.to_string()).collect();
        if wanted > alphabet.len() / 4 {
            probes = alphabet
                .iter()
                .flat_map(|a| alphabet.iter().step_by(3).map(move |b| format!("{a}{b}")))
                .collect();
        }
        for probe in probes {
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
        let mut sorted: Vec<Value> = rows
            .iter()
            .filter_map(|r| value_from_cell(self.kind, cell(r, 0)))
            .collect();
        sorted.dedup();
        if sorted.last() != Some(max) {
            sorted.push(max.clone());
        }
        let mut gaps = Vec::with_capacity(sorted.len());
        let mut lo: Option<Value> = None;
        for hi in sorted {
            let rows = self.estimate(lo.as_ref(), Some(&hi))?;
            gaps.push((hi.clone(), rows));
            lo = Some(hi);
        }
        Ok(gaps)
    }
}
