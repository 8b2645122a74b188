//! SIGTERM/SIGINT stop cleanly; a reader closing the pipe ends the run with one clear line.

use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

fn big_db(hint: &str, rows: u32) -> String {
    let db = fresh_db(hint);
    db_conn(&db)
        .query_drop(format!(
            "CREATE TABLE t (id int primary key, v varchar(40)); INSERT INTO t SELECT seq, CONCAT('value-', seq) FROM seq_1_to_{rows}"
        ))
        .unwrap();
    db
}

#[test]
fn sigterm_writes_a_final_state_covering_only_written_rows() {
    let n = 300_000;
    let db = big_db("sigterm", n);
    let mut cfg = base_config();
    cfg["filter_dbs"] = json!(db);
    cfg["max_parallel_streams"] = json!(1);
    cfg["state_interval_rows"] = json!(5_000);
    let cfg_file = json_file(&cfg);
    let run = run_with_action(
        &["--config", cfg_file.path().to_str().unwrap()],
        20_000,
        |pid| {
            Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .unwrap();
        },
    );
    assert_eq!(run.code, Some(128 + 15), "{}", run.stderr);
    assert!(run.stderr.contains("stopped by SIGTERM"), "{}", run.stderr);
    assert!(!run.stderr.contains("panicked"));
    let id = format!("{db}-t");
    let emitted: Vec<i64> = run
        .records(&id)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert!(emitted.len() < n as usize, "stopped mid-table");
    assert_eq!(
        run.messages.last().unwrap()["type"],
        "STATE",
        "the last line is a STATE"
    );
    let state = run.last_state();
    let last = state["bookmarks"][&id]["last_pk_fetched"]["id"]
        .as_i64()
        .unwrap();
    assert!(
        last <= *emitted.iter().max().unwrap(),
        "the STATE covers only rows written"
    );
    let resumed = sync(&cfg, None, Some(&state));
    let mut all: HashSet<i64> = emitted.into_iter().collect();
    all.extend(
        resumed
            .records(&id)
            .iter()
            .map(|r| r["id"].as_i64().unwrap()),
    );
    assert_eq!(all.len(), n as usize, "resuming completes the table");
}

#[test]
fn a_closed_stdout_ends_the_run_with_one_line() {
    let db = big_db("epipe", 100_000);
    let mut cfg = base_config();
    cfg["filter_dbs"] = json!(db);
    let cfg_file = json_file(&cfg);
    let mut child = Command::new(tap_bin())
        .args(["--config", cfg_file.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        let mut reader = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let first: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(first["type"], "SCHEMA");
        // Dropping the reader closes the pipe, as `| head -1` would.
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let errors: Vec<&str> = stderr.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].contains("stdout was closed by the reader (broken pipe)"),
        "{stderr}"
    );
}
