//! Sync: plan the selected streams, read them, write Singer messages.
//!
//! Data flow (ARCHITECTURE.md): plan -> per-stream readers encoding rows into large buffers ->
//! one writer thread owning stdout and the state.

pub mod bookmark;
pub mod full_table;
pub mod incremental;
pub mod output;
pub mod plan;
pub mod rows;

use std::time::{Duration, Instant, SystemTime};

use crate::catalog::discover::discover_tables;
use crate::catalog::Catalog;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::singer::state::State;
use crate::singer::time::format_rfc3339;
use crate::source::connect::Connector;
use output::Writer;
use plan::{Method, StreamPlan};
use rows::Cadence;

/// Runs a sync of `catalog` (every table when None) from `state`, writing to stdout.
pub fn sync(config: &Config, catalog: Option<&Catalog>, state: State) -> Result<()> {
    sync_to(config, catalog, state, std::io::stdout())
}

/// Runs a sync writing Singer messages to `sink`.
pub fn sync_to<W: std::io::Write + Send + 'static>(
    config: &Config,
    catalog: Option<&Catalog>,
    state: State,
    sink: W,
) -> Result<()> {
    let connector = Connector::new(config)?;
    let mut conn = connector.connect("sync")?;
    let flavor = connector
        .server()
        .map(|s| s.flavor)
        .ok_or_else(|| Error::runtime("server flavor unknown after connecting"))?;
    let databases = match catalog {
        Some(c) => catalog_databases(c),
        None => config.discovery_databases(),
    };
    let tables = discover_tables(&mut conn, flavor, &databases, &config.types)?;
    let mut plans = plan::plan(catalog, &tables, &config.types)?;
    if plans.is_empty() {
        log::warn!("no stream is selected: nothing to sync");
    }
    // Resume the stream a previous run was in the middle of first.
    if let Some(current) = state.currently_syncing() {
        if let Some(pos) = plans.iter().position(|p| p.stream_id == current) {
            let p = plans.remove(pos);
            plans.insert(0, p);
        }
    }
    let time_extracted = format_rfc3339(SystemTime::now(), 6);
    let cadence = Cadence {
        rows: config.state_interval_rows,
        interval: Duration::from_secs(config.state_interval_s),
    };
    let bookmarks: Vec<_> = plans.iter().map(|p| state.bookmark(&p.stream_id)).collect();
    let (out, writer) = Writer::spawn(sink, state);
    let mut result = Ok(());
    for (plan, bookmark) in plans.iter().zip(bookmarks) {
        if let Err(e) = sync_stream(&mut conn, plan, bookmark, &out, cadence, &time_extracted) {
            result = Err(e);
            break;
        }
    }
    drop(out);
    let written = writer.finish();
    // A writer failure (e.g. a closed pipe) is the cause of any worker error that follows it.
    match (written, result) {
        (Err(w), _) => Err(w),
        (Ok(_), r) => r,
    }
}

fn sync_stream(
    conn: &mut mysql::Conn,
    plan: &StreamPlan,
    bookmark: serde_json::Map<String, serde_json::Value>,
    out: &output::OutputSender,
    cadence: Cadence,
    time_extracted: &str,
) -> Result<()> {
    let started = Instant::now();
    log::info!(
        "stream '{}': starting {} sync of {} columns (about {} rows)",
        plan.stream_id,
        plan.method,
        plan.columns.len(),
        plan.row_estimate.map_or("?".to_string(), |n| n.to_string())
    );
    let rows = match plan.method {
        Method::FullTable => {
            full_table::sync_full_table(conn, plan, bookmark, out, cadence, time_extracted)?
        }
        Method::Incremental => {
            incremental::sync_incremental(conn, plan, bookmark, out, cadence, time_extracted)?
        }
        Method::LogBased => {
            return Err(Error::usage(format!(
                "stream '{}': LOG_BASED replication is not available in this version yet",
                plan.stream_id
            )))
        }
    };
    let secs = started.elapsed().as_secs_f64();
    log::info!(
        "stream '{}': {rows} rows in {secs:.2} s ({:.0} rows/s)",
        plan.stream_id,
        rows as f64 / secs.max(1e-9)
    );
    Ok(())
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
