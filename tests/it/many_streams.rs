//! Many small streams: their starts and ends share STATE lines (the output stays linear in the
//! stream count), the next STATE line carries the ends of the streams before it, no STATE is
//! ever ahead of the records it covers, and a run killed midway resumes to every stream loaded,
//! without reading again the streams whose completion was in a STATE line before the kill (its
//! full table pass); the run after that reads every stream again.

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
    assert!(
        state["full_table_pass"].as_u64().is_some(),
        "an unfinished run's STATE holds its pass: {state}"
    );
    let resumed = sync(&cfg, Some(&catalog), Some(&state));
    // The resumed run reads only the streams the last STATE does not record as finished.
    let reread: BTreeSet<String> = resumed
        .messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| m["stream"].as_str().unwrap().to_string())
        .collect();
    let all: BTreeSet<String> = (0..TABLES)
        .map(|t| format!("{}-t{t:02}", cfg["filter_dbs"].as_str().unwrap()))
        .collect();
    assert!(
        reread.is_disjoint(&done),
        "finished streams read again: {reread:?}"
    );
    // Every other stream is read, unless the kill came after its last row's checkpoint.
    for s in all.difference(&done).filter(|s| !reread.contains(*s)) {
        assert_eq!(
            state["bookmarks"][s]["last_pk_fetched"]["id"],
            json!(ROWS),
            "{s} was not read by the resumed run"
        );
    }
    assert!(reread.len() >= TABLES - done.len() - 1);
    assert!(
        resumed.stderr.contains(&format!(
            "resuming an interrupted run: {} FULL_TABLE stream(s) it finished are not read again",
            done.len()
        )),
        "{}",
        resumed.stderr
    );
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
    let completed = resumed.last_state();
    assert_eq!(finished(&completed).len(), TABLES);
    assert_eq!(
        completed.get("full_table_pass"),
        None,
        "a completed run ends its pass"
    );
    assert_eq!(whole.last_state().get("full_table_pass"), None);
    // The next run starts a new pass: every stream again, with a newer version.
    let next = sync(&cfg, Some(&catalog), Some(&completed));
    assert_eq!(next.raw_records().len(), ROWS * TABLES);
    for (stream, b) in next.last_state()["bookmarks"].as_object().unwrap() {
        assert!(
            b["version"].as_u64() > completed["bookmarks"][stream]["version"].as_u64(),
            "{stream}: a new pass loads a new version"
        );
    }
}

/// A run of more than 200 streams logs no per-stream start or end line at `info`, a summary
/// instead (periodic, and at the end), and still a METRIC line per stream.
#[test]
fn a_run_of_many_streams_logs_a_summary_and_every_metric() {
    const MANY: usize = 201;
    let db = fresh_db("many_streams_log");
    let mut c = db_conn(&db);
    let ddl: Vec<String> = (0..MANY)
        .map(|t| {
            format!(
                "CREATE TABLE t{t:03} (id int PRIMARY KEY); INSERT INTO t{t:03} VALUES (1), (2);"
            )
        })
        .collect();
    c.query_drop(ddl.join(" ")).unwrap();
    let mut cfg = config_for(&db);
    cfg["log_level"] = json!("info");
    let mut catalog = discover(&cfg);
    select_all(&mut catalog, &[]);
    let run = sync(&cfg, Some(&catalog), None);
    assert_eq!(run.raw_records().len(), 2 * MANY);
    let info: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(" INFO "))
        .collect();
    let per_stream: Vec<&&str> = info
        .iter()
        .filter(|l| l.contains("stream '") && !l.contains("METRIC"))
        .collect();
    assert!(
        per_stream.is_empty(),
        "per-stream info lines: {:?}",
        &per_stream[..per_stream.len().min(3)]
    );
    let counters = info
        .iter()
        .filter(|l| l.contains(r#""metric":"record_count","value":2"#))
        .count();
    assert_eq!(counters, MANY, "one record_count METRIC per stream");
    assert!(
        info.iter().any(|l| l.contains(&format!(
            "progress: {MANY} of {MANY} streams done, {} rows",
            2 * MANY
        ))),
        "{}",
        run.stderr
    );

    // A run of few streams keeps its per-stream lines.
    let mut few = catalog.clone();
    few["streams"].as_array_mut().unwrap().truncate(3);
    let run = sync(&cfg, Some(&few), None);
    assert_eq!(run.stderr.matches("starting FULL_TABLE sync").count(), 3);
    assert!(!run.stderr.contains("progress: "));
}
