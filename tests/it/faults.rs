//! Connections killed mid-read: the run reconnects, resumes after the last row written, and ends
//! with every source row present.

use std::collections::HashMap;

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

/// Runs the tap, and after `after_lines` lines of output kills (KILL CONNECTION) every server
/// connection of the test user that is running a SELECT on `db`.`table`. Returns the run and how
/// many connections were killed.
fn run_killing(
    cfg: &Value,
    catalog: Option<&Value>,
    db: &str,
    table: &str,
    after_lines: usize,
) -> (Run, usize) {
    let files = TapFiles::new(cfg, catalog, None);
    let mut killed = 0;
    // Only this test's table: the fault tests run in parallel on tables of the same name.
    let run = run_with_action(&files.args(), after_lines, |_| {
        killed = kill_connections(&format!("INFO LIKE 'SELECT%`{db}`.`{table}`%'"));
    });
    (run, killed)
}

/// A database with `big`: `rows` rows of about 60 + `pad` bytes.
fn fault_db(hint: &str, rows: u32, pad: u32) -> String {
    let db = fresh_db(hint);
    db_conn(&db)
        .query_drop(format!(
            "CREATE TABLE big (id int primary key, v varchar(1000), updated_at datetime(6) not null, KEY (updated_at));
             INSERT INTO big SELECT seq, CONCAT('value-', seq, REPEAT('x', {pad})), TIMESTAMP('2024-01-01') + INTERVAL seq SECOND FROM seq_1_to_{rows}"
        ))
        .unwrap();
    db
}

fn assert_complete(run: &Run, killed: usize, stream: &str, n: usize, max_dups: usize) {
    assert!(killed > 0, "a connection was killed mid-read");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("reconnecting"), "{}", run.stderr);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for r in run.records(stream) {
        *seen.entry(r["id"].as_i64().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), n, "every source row present");
    let dups: usize = seen.values().map(|c| c - 1).sum();
    assert!(dups <= max_dups, "{dups} duplicates");
}

fn config(db: &str, workers: u64) -> Value {
    let mut cfg = config_for(db);
    cfg["connect_retries"] = json!(3);
    cfg["max_parallel_streams"] = json!(workers);
    cfg
}

#[test]
fn full_table_survives_a_killed_connection() {
    let n = 300_000;
    let db = fault_db("fault_full", n as u32, 0);
    let (run, killed) = run_killing(&config(&db, 1), None, &db, "big", 5_000);
    assert_complete(&run, killed, &format!("{db}-big"), n, 0);
}

#[test]
fn chunked_parallel_read_survives_a_killed_connection() {
    // Wide rows: a 50k-row chunk (about 18 MB) cannot sit whole in the socket buffers, so a
    // chunk's SELECT is still running on the server while the tap waits on its stdout.
    let n = 200_000;
    let db = fault_db("fault_chunks", n as u32, 300);
    let mut cfg = config(&db, 2);
    cfg["chunk_rows"] = json!(50_000);
    let (run, killed) = run_killing(&cfg, None, &db, "big", 5_000);
    assert!(
        run.stderr.contains("chunks of about 50000 rows"),
        "{}",
        run.stderr
    );
    assert_complete(&run, killed, &format!("{db}-big"), n, 0);
}

#[test]
fn incremental_survives_a_killed_connection() {
    let n = 300_000;
    let db = fault_db("fault_incr", n as u32, 0);
    let cfg = config(&db, 1);
    let mut catalog = discover(&cfg);
    let id = format!("{db}-big");
    select_all(&mut catalog, &[(&id, "INCREMENTAL", Some("updated_at"))]);
    let (run, killed) = run_killing(&cfg, Some(&catalog), &db, "big", 5_000);
    // Resuming at `>=` the last value read re-reads rows with that value: one here.
    assert_complete(&run, killed, &id, n, 1);
}

#[test]
fn full_table_survives_a_network_cut() {
    let n = 200_000;
    let db = fault_db("fault_cut", n as u32, 0);
    let proxy = CuttingProxy::start(3_000_000);
    let mut cfg = config(&db, 1);
    cfg["port"] = json!(proxy.port);
    let run = sync_any(&cfg, None, None);
    assert!(
        proxy.cut.load(std::sync::atomic::Ordering::SeqCst),
        "the proxy cut a connection"
    );
    assert_complete(&run, 1, &format!("{db}-big"), n, 0);
}

#[test]
fn incremental_survives_a_network_cut() {
    let n = 200_000;
    let db = fault_db("fault_cut_incr", n as u32, 0);
    let mut cfg = config(&db, 1);
    let mut catalog = discover(&cfg);
    let id = format!("{db}-big");
    select_all(&mut catalog, &[(&id, "INCREMENTAL", Some("updated_at"))]);
    let proxy = CuttingProxy::start(3_000_000);
    cfg["port"] = json!(proxy.port);
    let run = sync_any(&cfg, Some(&catalog), None);
    assert!(proxy.cut.load(std::sync::atomic::Ordering::SeqCst));
    assert_complete(&run, 1, &id, n, 1);
}
