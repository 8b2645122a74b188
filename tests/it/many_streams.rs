//! Many small streams: their starts and ends share STATE lines (the output stays linear in the
//! stream count), the next STATE line carries the ends of the streams before it, no STATE is
//! ever ahead of the records it covers, and a run killed midway resumes to every stream loaded.
//! (FULL_TABLE streams are read again by every run, so the resumed run reads them all.)

use std::collections::{BTreeMap, BTreeSet};

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

const TABLES: usize = 30;
const ROWS: usize = 300;

/// `TABLES` tables of `ROWS` rows each, all selected FULL_TABLE, read one at a time.
fn many_tables() -> (Value, Value) {
    let db = fresh_db("many_streams");
    let mut c = db_conn(&db);
    for t in 0..TABLES {
        c.query_drop(format!(
            "CREATE TABLE t{t:02} (id int PRIMARY KEY, v varchar(20)); INSERT INTO t{t:02} SELECT seq, CONCAT('v', seq) FROM seq_1_to_{ROWS}"
        ))
        .unwrap();
    }
    let mut cfg = config_for(&db);
    cfg["max_parallel_streams"] = json!(1);
    let mut catalog = discover(&cfg);
    select_all(&mut catalog, &[]);
    (cfg, catalog)
}

/// The streams a STATE value records as fully loaded.
fn finished(state: &Value) -> BTreeSet<String> {
    state["bookmarks"]
        .as_object()
        .map(|b| {
            b.iter()
                .filter(|(_, v)| v["initial_full_table_complete"] == json!(true))
                .map(|(k, _)| k.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// Every STATE line of a run from no state is behind all the records of the streams it records
/// as finished.
fn assert_states_behind_records(run: &Run) {
    let mut rows: BTreeMap<String, usize> = BTreeMap::new();
    for m in &run.messages {
        match m["type"].as_str() {
            Some("RECORD") => {
                *rows
                    .entry(m["stream"].as_str().unwrap().to_string())
                    .or_default() += 1
            }
            Some("STATE") => {
                for s in finished(&m["value"]) {
                    assert_eq!(
                        rows.get(&s).copied().unwrap_or(0),
                        ROWS,
                        "a STATE records {s} as finished before its records"
                    );
                }
            }
            _ => {}
        }
    }
}

#[test]
fn many_streams_share_state_lines_never_ahead_of_their_records() {
    let (cfg, catalog) = many_tables();
    // A whole run: the first stream's start and the final STATE (the others ride on it).
    let whole = sync(&cfg, Some(&catalog), None);
    assert_eq!(whole.raw_records().len(), ROWS * TABLES);
    let states = whole
        .messages
        .iter()
        .filter(|m| m["type"] == "STATE")
        .count();
    assert!(states <= 3, "{states} STATE lines for {TABLES} streams");
    assert_eq!(finished(&whole.last_state()).len(), TABLES);
    assert_states_behind_records(&whole);

    // With a checkpoint in the middle of every stream: each checkpoint's STATE line also carries
    // the ends of the streams before it. Killed two thirds of the way.
    let mut eager = cfg.clone();
    eager["state_interval_rows"] = json!(ROWS / 2);
    let killed = run_and_kill_after(&eager, Some(&catalog), None, 2 * TABLES * ROWS / 3);
    assert_states_behind_records(&killed);
    let state = killed
        .messages
        .iter()
        .rev()
        .find(|m| m["type"] == "STATE")
        .map(|m| m["value"].clone())
        .expect("a STATE before the kill");
    let done = finished(&state);
    assert!(
        done.len() >= TABLES / 2,
        "the last STATE before the kill records {} finished streams",
        done.len()
    );
    let resumed = sync(&cfg, Some(&catalog), Some(&state));
    // Every row of every stream, from the killed run or the resumed one (the stream that was
    // being read resumes after its checkpoint).
    let mut ids: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
    for m in killed
        .messages
        .iter()
        .chain(&resumed.messages)
        .filter(|m| m["type"] == "RECORD")
    {
        let stream = m["stream"].as_str().unwrap().to_string();
        ids.entry(stream)
            .or_default()
            .insert(m["record"]["id"].as_i64().unwrap());
    }
    assert_eq!(ids.len(), TABLES);
    for (stream, got) in &ids {
        assert_eq!(got.len(), ROWS, "{stream}");
    }
    assert_eq!(finished(&resumed.last_state()).len(), TABLES);
}
