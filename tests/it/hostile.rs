//! Hostile and broken input: odd names end to end, state from another tap, a stalled reader.

use mysql::prelude::Queryable;
use serde_json::json;

use crate::support::*;

#[test]
fn names_with_quotes_backticks_newlines_and_unicode_sync_and_resume() {
    let db = fresh_db("odd names");
    let table = "we`ird 'tab\"le\nx 表";
    let qt = table.replace('`', "``");
    let mut c = db_conn(&db);
    c.query_drop(format!(
        "CREATE TABLE `{qt}` (`k``1` varchar(20), `k'2\nz` int, `v \"x\"` varchar(20), PRIMARY KEY (`k``1`, `k'2\nz`))"
    ))
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO `{qt}` SELECT CONCAT('a''`\"', seq % 7), seq, CONCAT('v', seq) FROM seq_1_to_5000"
    ))
    .unwrap();
    let mut cfg = config_for(&db);
    cfg["state_interval_rows"] = json!(300);
    cfg["max_parallel_streams"] = json!(1);
    let id = format!("{db}-{table}");
    let mut catalog = discover(&cfg);
    select_all(&mut catalog, &[]);
    let first = run_and_kill_after(&cfg, Some(&catalog), None, 1_500);
    let state = first.last_state();
    assert!(
        state["bookmarks"][&id]["last_pk_fetched"].is_object(),
        "{state}"
    );
    let second = sync(&cfg, Some(&catalog), Some(&state));
    let mut keys = std::collections::HashSet::new();
    for r in first.records(&id).into_iter().chain(second.records(&id)) {
        keys.insert((
            r["k`1"].as_str().unwrap().to_string(),
            r["k'2\nz"].as_i64().unwrap(),
        ));
    }
    assert_eq!(keys.len(), 5000);
}

#[test]
fn state_from_another_catalog_is_a_clear_error() {
    let db = fresh_db("foreign_state");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1), (2)")
        .unwrap();
    let cfg = config_for(&db);
    let id = format!("{db}-t");
    // pipelinewise-style in-progress bookmark keyed by a column this table does not have.
    let state = json!({"bookmarks": {&id: {"version": 1, "last_pk_fetched": {"order_id": 5}, "max_pk_values": {"order_id": 9}}}});
    let run = sync_any(&cfg, None, Some(&state));
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("has no value for key column 'id'"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("remove the stream's bookmark"),
        "{}",
        run.stderr
    );
    // A bookmark value that is not a usable literal.
    let state = json!({"bookmarks": {&id: {"version": 1, "last_pk_fetched": {"id": "1; DROP TABLE t"}, "max_pk_values": {"id": 2}}}});
    let run = sync_any(&cfg, None, Some(&state));
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("is not a number"), "{}", run.stderr);
    assert_eq!(
        db_conn(&db)
            .query_first::<i64, _>("SELECT COUNT(*) FROM t")
            .unwrap(),
        Some(2)
    );
}

#[test]
fn a_stalled_reader_does_not_kill_the_read() {
    // The server drops a streaming query whose client stalls past net_write_timeout; the tap's
    // sessions set it to an hour. Lower the server default to 2 s, stall 5 s, read on. (The
    // setting's guard holds the server-wide lock, so no test waits for this stalled query.)
    let db = fresh_db("stall");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key, v varchar(200)); INSERT INTO t SELECT seq, REPEAT('x', 200) FROM seq_1_to_100000")
        .unwrap();
    let timeout = set_global("net_write_timeout", "2");
    let cfg = config_for(&db);
    let cfg_file = json_file(&cfg);
    let run = run_with_action(&["--config", cfg_file.path().to_str().unwrap()], 1, |_| {
        std::thread::sleep(std::time::Duration::from_secs(5));
    });
    drop(timeout);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        !run.stderr.contains("reconnecting"),
        "no connection was dropped: {}",
        run.stderr
    );
    assert_eq!(run.records(&format!("{db}-t")).len(), 100_000);
}

#[test]
fn huge_values_come_through_whole() {
    // 12 MiB in one LONGBLOB and one LONGTEXT cell (the server's max_allowed_packet is 16 MiB).
    let db = fresh_db("huge");
    db_conn(&db)
        .query_drop(
            "CREATE TABLE t (id int primary key, b longblob, x longtext);
             INSERT INTO t VALUES (1, REPEAT(X'00FF', 6 * 1024 * 1024), REPEAT('é', 6 * 1024 * 1024))",
        )
        .unwrap();
    let cfg = config_for(&db);
    let run = sync(&cfg, None, None);
    let r = &run.records(&format!("{db}-t"))[0];
    let b = r["b"].as_str().unwrap();
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
    assert_eq!(bytes.len(), 12 * 1024 * 1024);
    assert!(bytes.chunks(2).all(|p| p == [0x00, 0xFF]));
    assert_eq!(r["x"].as_str().unwrap().chars().count(), 6 * 1024 * 1024);
}
