//! `--test`: the Meltano SDK's connection test. Connect, discover, plan the selected streams
//! (every table without a catalog) and write each one's SCHEMA and, unless `--test=schema`, one
//! RECORD read with `LIMIT 1`. No snapshot, no lock, no binlog, no STATE, no ACTIVATE_VERSION:
//! nothing a target would keep as progress. Any failure is the run's one error line.

use std::io::Write;
use std::time::SystemTime;

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

use crate::catalog::discover::discover_tables;
use crate::catalog::Catalog;
use crate::cli::TestMode;
use crate::config::Config;
use crate::encode::{encode_cell, ColumnWarnings};
use crate::error::{Error, Result};
use crate::plan::{Method, StreamPlan};
use crate::singer::messages::{schema_message, RecordFrame};
use crate::singer::time::format_rfc3339;
use crate::source::connect::Connector;
use crate::source::query::qualified;
use crate::source::wire::Cells;

/// Runs the connection test, writing its messages to `sink`.
pub(super) fn test_to(
    config: &Config,
    catalog: Option<&Catalog>,
    mode: TestMode,
    sink: &mut impl Write,
) -> Result<()> {
    let connector = Connector::new(config)?;
    let mut conn = connector.connect("test")?;
    let flavor = connector
        .server()
        .map(|s| s.flavor)
        .ok_or_else(|| Error::runtime("server flavor unknown after connecting"))?;
    let databases = match catalog {
        Some(c) => super::sync::catalog_databases(c),
        None => config.discovery_databases(),
    };
    let tables = discover_tables(&mut conn, flavor, &databases, &config.types)?;
    let plans = crate::plan::plan(catalog, &tables, &config.types)?.plans;
    if plans.is_empty() {
        log::warn!(
            "test: connected and discovered {} table(s), but no stream is selected",
            tables.len()
        );
    }
    let time_extracted = format_rfc3339(SystemTime::now(), 6);
    let mut records = 0usize;
    for plan in &plans {
        let mut out = schema_line(plan);
        if mode == TestMode::All && first_record(&mut conn, plan, &time_extracted, &mut out)? {
            records += 1;
        }
        sink.write_all(&out)
            .and_then(|_| sink.flush())
            .map_err(|e| Error::io("cannot write to stdout", e))?;
    }
    match mode {
        TestMode::All => log::info!(
            "test: passed: {} stream(s), {records} record(s) read (one per non-empty stream)",
            plans.len()
        ),
        TestMode::Schema => log::info!("test: passed: {} stream(s), schemas only", plans.len()),
    }
    Ok(())
}

/// The stream's SCHEMA line, as a sync would write it.
fn schema_line(plan: &StreamPlan) -> Vec<u8> {
    let rk = plan.replication_key_name().map(|k| vec![k.to_string()]);
    let bookmark = match plan.method {
        Method::Incremental => rk.as_deref(),
        _ => None,
    };
    schema_message(
        &plan.stream_id,
        &plan.schema,
        &plan.key_properties,
        bookmark,
    )
}

/// Reads one row of the stream and appends it to `out` as a RECORD; false for an empty table.
fn first_record(
    conn: &mut Conn,
    plan: &StreamPlan,
    time_extracted: &str,
    out: &mut Vec<u8>,
) -> Result<bool> {
    let columns: Vec<&str> = plan
        .columns
        .iter()
        .map(|c| c.select_expr.as_str())
        .collect();
    let sql = format!(
        "SELECT {} FROM {} LIMIT 1",
        columns.join(", "),
        qualified(&plan.database, &plan.table)
    );
    log::debug!("stream '{}': {sql}", plan.stream_id);
    let row: Option<Row> = conn
        .query_first(&sql)
        .map_err(|e| Error::mysql(format!("stream '{}': reading a row", plan.stream_id), e))?;
    let Some(row) = row else {
        log::info!("test: stream '{}' is empty", plan.stream_id);
        return Ok(false);
    };
    let names: Vec<&str> = plan.columns.iter().map(|c| c.name.as_str()).collect();
    let frame = RecordFrame::new(&plan.stream_id, &names, None, time_extracted);
    let mut warnings = vec![ColumnWarnings::default(); plan.columns.len()];
    let mut line = frame.prefix().to_vec();
    for (i, c) in plan.columns.iter().enumerate() {
        line.extend_from_slice(frame.key(i));
        encode_cell(c.encoder, row.cell(i), &mut line, &mut warnings[i]);
    }
    line.extend_from_slice(frame.suffix());
    plan.check_text(&warnings)?;
    out.extend_from_slice(&line);
    Ok(true)
}
