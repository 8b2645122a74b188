//! FULL_TABLE: the whole table, in key order, resumable after the last written key, with a
//! table version that survives an interrupted run.
//!
//! State (pipelinewise-compatible): while in progress the bookmark holds `version`,
//! `max_pk_values` and `last_pk_fetched`; when done, `version` and
//! `initial_full_table_complete: true`. A run that finds `max_pk_values` (or
//! `last_pk_fetched`) in its bookmark resumes with the same version, so its final
//! ACTIVATE_VERSION never deletes rows written before the interruption.
//!
//! ACTIVATE_VERSION is sent before the first ever full sync of a stream (so the target creates
//! the table and shows rows as they arrive) and at the end of every completed full sync. It is
//! not sent at the start of later syncs: that would empty the target's table until the reload
//! finishes.

use mysql::prelude::Queryable;
use mysql::{Conn, Row};
use serde_json::{json, Map, Value};

use super::bookmark::{literal, value_from_cell};
use super::output::OutputSender;
use super::plan::StreamPlan;
use super::rows::{cell, read_rows, Cadence};
use crate::error::{Error, MysqlContext, Result};
use crate::singer::messages::{activate_version_message, schema_message, RecordFrame};
use crate::source::query::{qualified, quote_ident, tuple_compare};

/// Syncs one FULL_TABLE stream.
pub fn sync_full_table(
    conn: &mut Conn,
    plan: &StreamPlan,
    bookmark: Map<String, Value>,
    out: &OutputSender,
    cadence: Cadence,
    time_extracted: &str,
) -> Result<u64> {
    let id = plan.stream_id.as_str();
    let in_progress =
        bookmark.contains_key("max_pk_values") || bookmark.contains_key("last_pk_fetched");
    let first_ever = !bookmark
        .get("initial_full_table_complete")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let version = match bookmark.get("version").and_then(Value::as_u64) {
        Some(v) if in_progress => v,
        _ => now_millis(),
    };
    let key_cols: Vec<String> = plan
        .resume_key
        .iter()
        .map(|&i| quote_ident(&plan.columns[i].name))
        .collect();
    let resumable = !key_cols.is_empty();

    let mut msgs = schema_message(id, &plan.schema, &plan.key_properties, None);
    if first_ever && !in_progress {
        msgs.extend(activate_version_message(id, version));
    }
    out.send(msgs)?;

    // Bounds: resume after last_pk_fetched, stop at max_pk_values (taken at the first start).
    let mut where_parts = Vec::new();
    let mut max_pk = bookmark.get("max_pk_values").cloned();
    if resumable {
        if max_pk.is_none() {
            max_pk = read_max_key(conn, plan, &key_cols)?;
        }
        if let Some(Value::Object(max)) = &max_pk {
            where_parts.push(tuple_compare(
                &key_cols,
                &key_literals(plan, max, "max_pk_values")?,
                "<=",
            ));
        }
        if in_progress {
            if let Some(Value::Object(last)) = bookmark.get("last_pk_fetched") {
                where_parts.push(tuple_compare(
                    &key_cols,
                    &key_literals(plan, last, "last_pk_fetched")?,
                    ">",
                ));
                log::info!(
                    "stream '{id}': resuming FULL_TABLE version {version} after {}",
                    Value::Object(last.clone())
                );
            }
        }
    } else if in_progress {
        log::info!("stream '{id}': no usable key to resume by; re-reading the whole table with version {version}");
    }

    let mut progress = Map::new();
    progress.insert("version".into(), json!(version));
    if resumable {
        progress.insert(
            "max_pk_values".into(),
            max_pk.clone().unwrap_or_else(|| json!({})),
        );
    } else {
        progress.insert("max_pk_values".into(), json!({}));
    }
    if let Some(last) = bookmark
        .get("last_pk_fetched")
        .filter(|_| in_progress && resumable)
    {
        progress.insert("last_pk_fetched".into(), last.clone());
    }
    out.bookmark(id, progress.clone(), Some(id))?;

    let empty_table = resumable && max_pk.is_none();
    let rows = if empty_table {
        0
    } else {
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
        if resumable {
            sql.push_str(" ORDER BY ");
            sql.push_str(&key_cols.join(", "));
        }
        let names: Vec<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
        let frame = RecordFrame::new(id, &names, Some(version), time_extracted);
        let outcome = read_rows(conn, &sql, plan, &frame, out, cadence, |row| {
            if resumable {
                let mut b = progress.clone();
                b.insert("last_pk_fetched".into(), Value::Object(last_key(plan, row)));
                out.bookmark(id, b, Some(id))?;
            }
            Ok(())
        })?;
        outcome.rows
    };

    let mut done = Map::new();
    for (k, v) in &bookmark {
        if !matches!(
            k.as_str(),
            "last_pk_fetched" | "max_pk_values" | "version" | "initial_full_table_complete"
        ) {
            done.insert(k.clone(), v.clone());
        }
    }
    done.insert("version".into(), json!(version));
    done.insert("initial_full_table_complete".into(), json!(true));
    out.send(activate_version_message(id, version))?;
    out.bookmark(id, done, None)?;
    Ok(rows)
}

/// The key of a row as a bookmark object.
fn last_key(plan: &StreamPlan, row: &Row) -> Map<String, Value> {
    plan.resume_key
        .iter()
        .map(|&i| {
            let c = &plan.columns[i];
            (
                c.name.clone(),
                value_from_cell(&c.kind, cell(row, i)).unwrap_or(Value::Null),
            )
        })
        .collect()
}

fn key_literals(plan: &StreamPlan, values: &Map<String, Value>, what: &str) -> Result<Vec<String>> {
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
            literal(&c.kind, v).map_err(|e| {
                Error::usage(format!("state: stream '{}': {what}.{}: {e}", plan.stream_id, c.name))
            })
        })
        .collect()
}

/// The greatest key now in the table, or None when it is empty.
fn read_max_key(conn: &mut Conn, plan: &StreamPlan, key_cols: &[String]) -> Result<Option<Value>> {
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
        Value::Object(
            plan.resume_key
                .iter()
                .enumerate()
                .map(|(pos, &i)| {
                    let c = &plan.columns[i];
                    (
                        c.name.clone(),
                        value_from_cell(&c.kind, cell(&r, pos)).unwrap_or(Value::Null),
                    )
                })
                .collect(),
        )
    }))
}

/// Milliseconds since the epoch: the table version of a new full sync.
pub fn now_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
