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
    let mut cfg = config_for(&db);
    cfg["max_parallel_streams"] = json!(1);
    cfg["state_interval_rows"] = json!(5_000);
    let run = sigterm_run(&cfg, None, 20_000, |_| {});
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
    let cfg = config_for(&db);
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

// ---------------------------------------------------------------------------------------------
// The final STATE of a stopped run covers exactly the rows written: resuming from it re-sends
// nothing. `state_interval_rows` is far above the table size, so no periodic STATE can explain
// the bookmark: only the stop itself records it.

const ROWS: i64 = 200_000;

/// A config that never emits a periodic STATE while these tables are read.
fn stop_config(db: &str, workers: u32, chunk_rows: u64) -> Value {
    let mut cfg = config_for(db);
    cfg["max_parallel_streams"] = json!(workers);
    cfg["chunk_rows"] = json!(chunk_rows);
    cfg["state_interval_rows"] = json!(1_000_000);
    cfg["state_interval_s"] = json!(3_600);
    cfg
}

/// A table of `ROWS` narrow rows with up-to-date statistics (chunk planning reads them).
fn stop_db(hint: &str) -> String {
    let db = big_db(hint, ROWS as u32);
    db_conn(&db).query_drop("ANALYZE TABLE t").unwrap();
    db
}

/// Runs the tap and, once `ready` returns (the reader has read `after_lines` lines), sends
/// SIGTERM. The pipe's back-pressure keeps the tap close behind the reader, so the signal lands
/// mid-stream.
fn sigterm_run(
    cfg: &Value,
    catalog: Option<&Value>,
    after_lines: usize,
    ready: impl FnOnce(u32),
) -> Run {
    let _running = long_query();
    let files = TapFiles::new(cfg, catalog, None);
    let run = run_with_action(&files.args(), after_lines, |pid| {
        ready(pid);
        Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
    });
    assert_eq!(run.code, Some(128 + 15), "{}", run.stderr);
    assert!(run.stderr.contains("stopped by SIGTERM"), "{}", run.stderr);
    assert_eq!(run.messages.last().unwrap()["type"], "STATE");
    run
}

fn record_ids(run: &Run, stream: &str) -> Vec<i64> {
    run.records(stream)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect()
}

/// Every key 1..=ROWS is in `before` or `after`, exactly once: nothing lost, nothing re-sent.
fn assert_exactly_once(before: &[i64], after: &[i64]) {
    assert!(
        !before.is_empty() && (before.len() as i64) < ROWS,
        "the signal landed mid-stream ({} rows before it)",
        before.len()
    );
    let first: HashSet<i64> = before.iter().copied().collect();
    let resent = after.iter().filter(|k| first.contains(k)).count();
    assert_eq!(
        resent,
        0,
        "rows re-sent after resuming ({} before the signal, {} after)",
        before.len(),
        after.len()
    );
    let mut all: Vec<i64> = before.iter().chain(after).copied().collect();
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=ROWS).collect::<Vec<_>>(),
        "every row exactly once"
    );
}

/// Checks a chunked stream's final bookmark against the keys written: a chunk is done, or its
/// `last_pk_fetched` is the greatest key written in its range, or none of its rows was written.
/// Returns how many chunks stopped mid-way.
fn assert_chunks_cover(bookmark: &Value, written: &[i64]) -> usize {
    let chunks = bookmark["chunks"].as_array().expect("chunk list");
    assert!(chunks.len() > 2, "chunked: {bookmark}");
    let mut stopped = 0;
    for c in chunks {
        let inside = |k: &&i64| {
            c["lo"].as_i64().is_none_or(|lo| **k > lo)
                && c["hi"].as_i64().is_none_or(|hi| **k <= hi)
        };
        let greatest = written.iter().filter(inside).max().copied();
        if c["done"] == true {
            continue;
        }
        let last = c["last_pk_fetched"]["id"].as_i64();
        assert_eq!(
            last, greatest,
            "chunk {c}: progress is its last written key"
        );
        stopped += usize::from(last.is_some());
    }
    stopped
}

#[test]
fn sigterm_state_covers_every_written_row_with_one_worker() {
    let db = stop_db("stop_one");
    let id = format!("{db}-t");
    let cfg = stop_config(&db, 1, 0);
    let run = sigterm_run(&cfg, None, 20_000, |_| {});
    let before = record_ids(&run, &id);
    let resumed = sync(&cfg, None, Some(&run.last_state()));
    assert_exactly_once(&before, &record_ids(&resumed, &id));
    let bookmarked: Vec<&Value> = run
        .messages
        .iter()
        .filter_map(|m| m["value"]["bookmarks"][&id].get("last_pk_fetched"))
        .collect();
    assert_eq!(
        bookmarked,
        vec![&json!({"id": before.last().unwrap()})],
        "only the final STATE has progress, and it is the last row written"
    );
}

#[test]
fn sigterm_state_covers_every_written_row_of_every_chunk() {
    let db = stop_db("stop_chunks");
    let id = format!("{db}-t");
    let cfg = stop_config(&db, 3, 20_000);
    let run = sigterm_run(&cfg, None, 20_000, |_| {});
    assert!(
        run.stderr.contains("chunks of about 20000 rows"),
        "{}",
        run.stderr
    );
    let before = record_ids(&run, &id);
    let state = run.last_state();
    let resumed = sync(&cfg, None, Some(&state));
    assert_exactly_once(&before, &record_ids(&resumed, &id));
    let stopped = assert_chunks_cover(&state["bookmarks"][&id], &before);
    assert!(stopped > 0, "a chunk was stopped mid-way: {state}");
}

#[test]
fn sigterm_state_holds_the_replication_key_of_the_last_incremental_row() {
    let db = stop_db("stop_incr");
    let id = format!("{db}-t");
    let cfg = stop_config(&db, 1, 0);
    let mut catalog = discover(&cfg);
    select_all(&mut catalog, &[(&id, "INCREMENTAL", Some("id"))]);
    let run = sigterm_run(&cfg, Some(&catalog), 20_000, |_| {});
    let before = record_ids(&run, &id);
    let state = run.last_state();
    let resumed = sync(&cfg, Some(&catalog), Some(&state));
    let mut after = record_ids(&resumed, &id);
    // Rows equal to the bookmark are read again (`>=`): the last row written, only.
    assert_eq!(
        after.first(),
        before.last(),
        "the boundary row is read again ({} rows re-read)",
        after.len() as i64 + before.len() as i64 - ROWS
    );
    after.remove(0);
    assert_exactly_once(&before, &after);
    assert_eq!(
        state["bookmarks"][&id]["replication_key_value"],
        json!(before.last().unwrap()),
        "{state}"
    );
}

/// BATCH mode: only rows of files announced by a BATCH message count as written.
fn batch_stop_case(workers: u32, chunk_rows: u64) {
    let db = stop_db(&format!("stop_batch_{workers}"));
    let id = format!("{db}-t");
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = stop_config(&db, workers, chunk_rows);
    cfg["batch_config"] = json!({
        "encoding": {"format": "jsonl", "compression": "none"},
        "storage": {"root": format!("file://{}", dir.path().display()), "prefix": "s-"},
        "batch_size": 500,
    });
    // Stop reading until the tap is blocked on the full pipe (files stop appearing), then
    // signal it: it has rows in unfinished files, in files not announced yet and announced.
    let run = sigterm_run(&cfg, None, 3, |pid| wait_until_stalled(pid, dir.path()));
    let before = announced_ids(&run);
    let state = run.last_state();
    let bookmark = &state["bookmarks"][&id];
    if chunk_rows > 0 {
        assert!(assert_chunks_cover(bookmark, &before) > 0, "{state}");
    } else {
        assert_eq!(
            bookmark["last_pk_fetched"]["id"].as_i64(),
            before.iter().max().copied(),
            "the final STATE covers exactly the announced files"
        );
    }
    let resumed = sync(&cfg, None, Some(&state));
    assert_exactly_once(&before, &announced_ids(&resumed));
    let mut on_disk: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut announced: Vec<String> = [&run, &resumed]
        .iter()
        .flat_map(|r| announced_files(r))
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    announced.sort();
    assert_eq!(on_disk, announced, "only announced files are left");
}

#[test]
fn sigterm_in_batch_mode_covers_exactly_the_announced_files() {
    batch_stop_case(1, 0);
}

#[test]
fn sigterm_in_batch_mode_with_chunks_covers_exactly_the_announced_files() {
    batch_stop_case(2, 20_000);
}

/// The files BATCH messages of a run point at.
pub fn announced_files(run: &Run) -> Vec<std::path::PathBuf> {
    run.messages
        .iter()
        .filter(|m| m["type"] == "BATCH")
        .flat_map(|m| m["manifest"].as_array().unwrap().clone())
        .map(|u| std::path::PathBuf::from(u.as_str().unwrap().trim_start_matches("file://")))
        .collect()
}

/// The ids in the JSONL files a run announced.
fn announced_ids(run: &Run) -> Vec<i64> {
    jsonl_ids(&announced_files(run))
}
