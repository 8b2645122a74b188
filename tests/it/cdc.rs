//! LOG_BASED: initial snapshot, then binlog CDC on the private MariaDB (binlog ROW/FULL, GTIDs).

use std::collections::BTreeMap;

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

fn records_of(run: &Run) -> Vec<(String, Value)> {
    run.messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| {
            (
                m["stream"].as_str().unwrap().to_string(),
                m["record"].clone(),
            )
        })
        .collect()
}

crate::support::under_full_and_no_log!(flow_case: snapshot_then_changes_in_commit_order_then_idle, snapshot_then_changes_with_no_log_row_metadata);

fn flow_case(metadata: &str) {
    let (_case, db) = cdc_case("cdc_flow", metadata);
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE a (id int primary key, v varchar(20), n bigint unsigned);
         CREATE TABLE b (id int primary key, amount decimal(12,2));
         CREATE TABLE other (id int primary key);
         INSERT INTO a VALUES (1, 'one', 1), (2, 'two', 2);
         INSERT INTO b VALUES (1, 10.00);",
    )
    .unwrap();
    let catalog = log_based(&db, &["a", "b"], &[]);
    let cfg = config_for(&db);
    let first = sync(&cfg, Some(&catalog), None);
    assert_eq!(first.records(&format!("{db}-a")).len(), 2, "initial load");
    let schema = first
        .messages
        .iter()
        .find(|m| m["type"] == "SCHEMA")
        .unwrap();
    assert!(
        schema["schema"]["properties"]
            .get("_sdc_deleted_at")
            .is_some(),
        "from the first SCHEMA on"
    );
    let s1 = first.last_state();
    let bm = &s1["bookmarks"][&format!("{db}-a")];
    assert!(
        bm["log_file"].is_string() && bm["log_pos"].is_u64() && bm["gtid"].is_string(),
        "{bm}"
    );
    assert_eq!(bm["initial_full_table_complete"], true);

    c.query_drop(
        "START TRANSACTION;
           INSERT INTO a VALUES (3, 'three', 18446744073709551615);
           UPDATE b SET amount = -0.50 WHERE id = 1;
         COMMIT;
         INSERT INTO other VALUES (1);
         START TRANSACTION;
           DELETE FROM a WHERE id = 1;
           INSERT INTO b VALUES (2, 99999999.99);
           UPDATE a SET v = 'TWO' WHERE id = 2;
         COMMIT;",
    )
    .unwrap();
    let second = sync(&cfg, Some(&catalog), Some(&s1));
    let got: Vec<(String, Value)> = records_of(&second)
        .into_iter()
        .map(|(s, mut r)| {
            if r["_sdc_deleted_at"].is_string() {
                r["_sdc_deleted_at"] = json!("<deleted>");
            }
            (s, r)
        })
        .collect();
    let a = format!("{db}-a");
    let b = format!("{db}-b");
    assert_eq!(
        got,
        vec![
            (
                a.clone(),
                json!({"id": 3, "v": "three", "n": 18446744073709551615u64, "_sdc_deleted_at": null})
            ),
            (
                b.clone(),
                json!({"id": 1, "amount": -0.5, "_sdc_deleted_at": null})
            ),
            (
                a.clone(),
                json!({"id": 1, "v": "one", "n": 1, "_sdc_deleted_at": "<deleted>"})
            ),
            (
                b.clone(),
                json!({"id": 2, "amount": 99999999.99, "_sdc_deleted_at": null})
            ),
            (
                a.clone(),
                json!({"id": 2, "v": "TWO", "n": 2, "_sdc_deleted_at": null})
            ),
        ]
    );
    assert!(
        second.lines.iter().any(|l| l.contains(r#""amount":-0.50"#)),
        "exact decimal digits"
    );
    // Every record carries the stream's table version from the initial load.
    for m in second.messages.iter().filter(|m| m["type"] == "RECORD") {
        let stream = m["stream"].as_str().unwrap();
        assert_eq!(m["version"], s1["bookmarks"][stream]["version"], "{stream}");
    }
    // The deletion time is the commit time, RFC 3339 UTC.
    let deleted = second
        .messages
        .iter()
        .find(|m| m["record"]["_sdc_deleted_at"].is_string())
        .unwrap();
    assert!(deleted["record"]["_sdc_deleted_at"]
        .as_str()
        .unwrap()
        .ends_with("+00:00"));
    let s2 = second.last_state();
    assert_ne!(s2["bookmarks"][&a]["log_pos"], bm["log_pos"]);
    assert_eq!(
        s2["bookmarks"][&a]["log_pos"],
        s2["bookmarks"][&b]["log_pos"]
    );

    // Nothing selected changes: no records, but the bookmarks move to the new end.
    c.query_drop("INSERT INTO other VALUES (2), (3)").unwrap();
    let third = sync(&cfg, Some(&catalog), Some(&s2));
    assert!(records_of(&third).is_empty(), "{:?}", records_of(&third));
    let s3 = third.last_state();
    let (p2, p3) = (&s2["bookmarks"][&a], &s3["bookmarks"][&a]);
    assert!(
        (p3["log_file"].as_str(), p3["log_pos"].as_u64())
            > (p2["log_file"].as_str(), p2["log_pos"].as_u64()),
        "idle stream advanced: {p2} -> {p3}"
    );
    assert_ne!(p3["gtid"], p2["gtid"]);
}

#[test]
fn resuming_from_any_state_loses_and_splits_no_transaction() {
    resume_case(false);
}

#[test]
fn resuming_by_mariadb_gtid_loses_and_splits_no_transaction() {
    resume_case(true);
}

fn resume_case(use_gtid: bool) {
    let _g = cdc_lock();
    // NO_LOG here (the server default on MariaDB); the flow test covers FULL and NO_LOG.
    let _m = set_global("binlog_row_metadata", "NO_LOG");
    let db = fresh_db(if use_gtid {
        "cdc_resume_gtid"
    } else {
        "cdc_resume"
    });
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int primary key, grp int)")
        .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let mut cfg = config_for(&db);
    cfg["use_gtid"] = json!(use_gtid);
    let s1 = sync(&cfg, Some(&catalog), None).last_state();
    for g in 1..=5 {
        c.query_drop(format!(
            "START TRANSACTION; INSERT INTO t VALUES ({a}, {g}), ({b}, {g}), ({c}, {g}); COMMIT;",
            a = g * 10,
            b = g * 10 + 1,
            c = g * 10 + 2
        ))
        .unwrap();
    }
    let full = sync(&cfg, Some(&catalog), Some(&s1));
    if use_gtid {
        assert!(
            full.stderr.contains("starting from MariaDB GTID position"),
            "{}",
            full.stderr
        );
    }
    let all: Vec<i64> = records_of(&full)
        .iter()
        .map(|(_, r)| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        all,
        vec![10, 11, 12, 20, 21, 22, 30, 31, 32, 40, 41, 42, 50, 51, 52]
    );
    // Pretend the run was interrupted right after each STATE it wrote: resuming from there
    // emits exactly the remaining transactions, whole.
    let mut seen = 0;
    for (i, m) in full.messages.iter().enumerate() {
        if m["type"] != "STATE" {
            continue;
        }
        let before: Vec<i64> = full.messages[..i]
            .iter()
            .filter(|m| m["type"] == "RECORD")
            .map(|m| m["record"]["id"].as_i64().unwrap())
            .collect();
        assert_eq!(
            before.len() % 3,
            0,
            "a STATE never falls inside a transaction"
        );
        let resumed = sync(&cfg, Some(&catalog), Some(&m["value"]));
        let after: Vec<i64> = records_of(&resumed)
            .iter()
            .map(|(_, r)| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!([before, after].concat(), all, "resuming from STATE #{seen}");
        seen += 1;
    }
    assert!(seen >= 5);
}

/// Rows inserted through the binlog decode to exactly the values the snapshot path emits for the
/// same rows, for every fixture type (spatial, UUID and INET included), with FULL and with NO_LOG
/// row metadata.
#[test]
fn binlog_values_equal_snapshot_values_with_full_and_no_log_metadata() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_types");
    load_fixture(&db, "types.sql");
    let cols: Vec<String> = {
        let mut c = db_conn(&db);
        c.query::<String, _>(format!(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = '{db}' AND TABLE_NAME = 'all_types' AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION"
        ))
        .unwrap()
    };
    let col_list = cols
        .iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ");
    // The snapshot path's values for the fixture rows.
    let mut plain = config_for(&db);
    plain["max_parallel_streams"] = json!(1);
    let mut snap_catalog = discover(&plain);
    only_streams(&mut snap_catalog, &[&format!("{db}-all_types")]);
    select_all(&mut snap_catalog, &[]);
    let snapshot = sync(&plain, Some(&snap_catalog), None).raw_records();
    assert_eq!(snapshot.len(), 7);
    for metadata in ["FULL", "NO_LOG"] {
        let _m = set_global("binlog_row_metadata", metadata);
        let table = format!("cdc_{}", metadata.to_lowercase());
        let mut c = db_conn(&db);
        c.query_drop(format!("CREATE TABLE `{table}` LIKE all_types"))
            .unwrap();
        let catalog = log_based(&db, &[&table], &[]);
        let state = sync(&plain, Some(&catalog), None).last_state();
        c.query_drop(format!(
            "SET SESSION sql_mode = ''; INSERT INTO `{table}` ({col_list}) SELECT {col_list} FROM all_types ORDER BY id"
        ))
        .unwrap();
        let run = sync(&plain, Some(&catalog), Some(&state));
        let cdc = run.raw_records();
        assert_eq!(cdc.len(), 7, "{metadata}");
        for (row, (got, want)) in cdc.iter().zip(&snapshot).enumerate() {
            for (col, value) in got {
                if col == "_sdc_deleted_at" {
                    assert_eq!(value, "null");
                    continue;
                }
                let expected = &want[col];
                // Exact text everywhere, except that floats may be spelled differently
                // (`0` / `0.0`, `1e38` / `1e+38`) as long as they are the same number; and JSON
                // documents may differ in insignificant whitespace.
                let as_f64 = |t: &str| t.parse::<f64>().ok();
                let same = value == expected
                    || (col.starts_with("c_float") || col.starts_with("c_double"))
                        && as_f64(value).is_some()
                        && as_f64(value) == as_f64(expected)
                    || col == "c_json"
                        && serde_json::from_str::<Value>(value).ok()
                            == serde_json::from_str::<Value>(expected).ok();
                assert!(
                    same,
                    "{metadata}: row {} column {col}: binlog {value} vs snapshot {expected}",
                    row + 1
                );
            }
        }
    }
}

#[test]
fn cdc_failure_modes_are_clear() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_fail");
    db_conn(&db)
        .query_drop(
            "CREATE TABLE t (id int primary key, g point);
             CREATE VIEW v AS SELECT id FROM t;",
        )
        .unwrap();
    let cfg = config_for(&db);
    // A view can never be LOG_BASED (its changes are its base tables'): refused up front.
    let run = sync_any(&cfg, Some(&log_based(&db, &["v"], &[])), None);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "stream '{db}-v' is a view: LOG_BASED cannot follow a view"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Use FULL_TABLE"), "{}", run.stderr);
    assert!(run.messages.is_empty());
    // A purged binlog file, with auto_resnapshot off, names the file and how to recover.
    let catalog = log_based(&db, &["t"], &[]);
    let state = json!({"bookmarks": {format!("{db}-t"): {"log_file": "binlog.000000", "log_pos": 4, "version": 1, "initial_full_table_complete": true}}});
    let mut strict = cfg.clone();
    strict["auto_resnapshot"] = json!(false);
    let run = sync_any(&strict, Some(&catalog), Some(&state));
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("its bookmarked binlog file binlog.000000 was purged"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("remove its bookmark from the state"),
        "{}",
        run.stderr
    );
    // A bookmark ahead of the server's binlog (another server, or the binlog was reset).
    let ahead = json!({"bookmarks": {format!("{db}-t"): {"log_file": "binlog.999999", "log_pos": 4, "version": 1, "initial_full_table_complete": true}}});
    let run = sync_any(&cfg, Some(&catalog), Some(&ahead));
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("is ahead of the server's binary log"),
        "{}",
        run.stderr
    );
    // binlog_format other than ROW.
    let statement = set_global("binlog_format", "STATEMENT");
    let state = sync(&cfg, Some(&catalog), None).last_state();
    let run = sync_any(&cfg, Some(&catalog), Some(&state));
    drop(statement);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("LOG_BASED needs binlog_format=ROW (the server has STATEMENT)"),
        "{}",
        run.stderr
    );
}

crate::support::under_full_and_no_log!(ddl_case: schema_changes_mid_stream_keep_records_matching_their_schema, schema_changes_mid_stream_with_no_log_row_metadata);

fn ddl_case(metadata: &str) {
    let (_case, db) = cdc_case("cdc_ddl", metadata);
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int primary key, a varchar(10), b int)")
        .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let cfg = config_for(&db);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    c.query_drop(
        "INSERT INTO t VALUES (1, 'x', 10);
         ALTER TABLE t ADD COLUMN c decimal(5,2) AFTER a;
         INSERT INTO t VALUES (2, 'y', 1.25, 20);
         ALTER TABLE t DROP COLUMN b;
         INSERT INTO t VALUES (3, 'z', 3.50);
         UPDATE t SET a = 'X' WHERE id = 1;",
    )
    .unwrap();
    // Meltano discovers again before every run: the catalog now has `c` and no longer `b`.
    let catalog = log_based(&db, &["t"], &[]);
    let run = sync(&cfg, Some(&catalog), Some(&state));
    let mut schema: Option<jsonschema::Validator> = None;
    let mut records = Vec::new();
    for m in &run.messages {
        match m["type"].as_str().unwrap() {
            "SCHEMA" => schema = Some(jsonschema::validator_for(&m["schema"]).unwrap()),
            "RECORD" => {
                let v = schema.as_ref().expect("SCHEMA first");
                assert!(
                    v.is_valid(&m["record"]),
                    "record matches its SCHEMA: {}",
                    m["record"]
                );
                records.push(m["record"].clone());
            }
            _ => {}
        }
    }
    // Values land in the right columns whatever the column order was when they were written.
    let by_id: BTreeMap<i64, Value> = records
        .iter()
        .map(|r| (r["id"].as_i64().unwrap(), r.clone()))
        .collect();
    assert_eq!(by_id[&1]["a"], "X");
    assert_eq!(by_id[&2]["a"], "y");
    assert_eq!(by_id[&2]["c"], json!(1.25));
    assert_eq!(by_id[&3]["c"], json!(3.5));
    assert!(
        records.iter().all(|r| r.get("b").is_none()),
        "the dropped column is gone from every record"
    );
    assert!(run.lines.iter().any(|l| l.contains(r#""c":3.50"#)));
}

#[test]
fn no_log_metadata_follows_columns_that_moved() {
    let (_case, db) = cdc_case("cdc_moved", "NO_LOG");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int primary key, a varchar(10), b int)")
        .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let cfg = config_for(&db);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    assert_eq!(
        state["bookmarks"][&format!("{db}-t")]["columns"],
        json!(["id", "a", "b"])
    );
    c.query_drop(
        "INSERT INTO t VALUES (1, 'x', 10);
         ALTER TABLE t MODIFY b int AFTER id;
         INSERT INTO t VALUES (2, 20, 'y');",
    )
    .unwrap();
    let run = sync(&cfg, Some(&log_based(&db, &["t"], &[])), Some(&state));
    let got: Vec<Value> = records_of(&run).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        got,
        vec![
            json!({"id": 1, "b": 10, "a": "x", "_sdc_deleted_at": null}),
            json!({"id": 2, "b": 20, "a": "y", "_sdc_deleted_at": null}),
        ]
    );
    assert_eq!(
        run.last_state()["bookmarks"][&format!("{db}-t")]["columns"],
        json!(["id", "b", "a"])
    );
}

#[test]
fn no_log_metadata_table_swap_with_auto_resnapshot_off_fails_clearly() {
    let (_case, db) = cdc_case("cdc_swap", "NO_LOG");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int primary key, a varchar(10), b int)")
        .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let mut cfg = config_for(&db);
    cfg["auto_resnapshot"] = json!(false);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    // A gh-ost style cut-over to a table whose columns are in another order.
    c.query_drop(
        "CREATE TABLE t_gho (b int, id int primary key, a varchar(10));
         RENAME TABLE t TO t_old, t_gho TO t;
         INSERT INTO t VALUES (5, 1, 'x');",
    )
    .unwrap();
    let run = sync_any(&cfg, Some(&log_based(&db, &["t"], &[])), Some(&state));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for needle in [
        "the table was replaced by another (RENAME TABLE t TO t_old, t_gho TO t)",
        "could not be followed from the binlog",
        "remove its bookmark from the state",
        "set auto_resnapshot to true",
    ] {
        assert!(run.stderr.contains(needle), "{needle}: {}", run.stderr);
    }
    assert!(
        run.messages.iter().all(|m| m["type"] != "RECORD"),
        "no record with shifted columns"
    );
}

#[test]
fn missing_replication_privileges_are_named() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_priv");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key)")
        .unwrap();
    create_user("cdc_select", "pw-cdc", &[&format!("SELECT ON `{db}`.*")]);
    let catalog = log_based(&db, &["t"], &[]);
    let state = sync(&config_for(&db), Some(&catalog), None).last_state();
    let mut cfg = config_for(&db);
    cfg["user"] = json!("cdc_select");
    cfg["password"] = json!("pw-cdc");
    let run = sync_any(&cfg, Some(&catalog), Some(&state));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("REPLICATION CLIENT"), "{}", run.stderr);
    // And with the position readable but no REPLICATION SLAVE, the dump itself is refused.
    root_conn()
        .query_drop("GRANT BINLOG MONITOR ON *.* TO 'cdc_select'@'%'")
        .unwrap();
    let run = sync_any(&cfg, Some(&catalog), Some(&state));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("REPLICATION SLAVE"), "{}", run.stderr);
}

#[test]
fn a_killed_replication_connection_resumes_at_the_last_commit() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_kill");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int primary key, v varchar(400))")
        .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let mut cfg = config_for(&db);
    cfg["connect_retries"] = json!(3);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    for batch in 0..200 {
        c.query_drop(format!(
            "INSERT INTO t SELECT seq + {off}, REPEAT('v', 300) FROM seq_1_to_1000",
            off = batch * 1000
        ))
        .unwrap();
    }
    let files = TapFiles::new(&cfg, Some(&catalog), Some(&state));
    let mut killed = 0;
    let run = run_with_action(&files.args(), 20_000, |_| {
        killed = kill_connections("COMMAND LIKE 'Binlog Dump%'");
    });
    assert!(killed > 0, "the dump connection was running");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("replication connection dropped"),
        "{}",
        run.stderr
    );
    let ids: std::collections::HashSet<i64> = records_of(&run)
        .iter()
        .map(|(_, r)| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        200_000,
        "every change present after the reconnect"
    );
}
