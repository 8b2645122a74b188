//! LOG_BASED stays exact under what production databases do: key changes, TRUNCATE, DROP, DDL
//! on other tables, table swaps and purged binlogs. Each case replays the tap's messages into
//! the model target and compares it with a fresh read of the source.

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::model_target::{assert_matches_source, Target};
use crate::support::*;

/// `(stream, record, version)` of every RECORD of a run.
fn records(run: &Run) -> Vec<(String, Value, Option<u64>)> {
    run.messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| {
            (
                m["stream"].as_str().unwrap().to_string(),
                m["record"].clone(),
                m["version"].as_u64(),
            )
        })
        .collect()
}

/// A record's values without `_sdc_deleted_at`, and whether it is a delete.
fn row(record: &Value) -> (Value, bool) {
    let mut r = record.as_object().unwrap().clone();
    let deleted = r.remove("_sdc_deleted_at").is_some_and(|d| !d.is_null());
    (Value::Object(r), deleted)
}

crate::support::under_full_and_no_log!(key_change_case: key_changes_delete_the_old_key_with_full_metadata, key_changes_delete_the_old_key_with_no_log_metadata);

fn key_change_case(metadata: &str) {
    let (_case, db) = cdc_case("cdc_keys", metadata);
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE s (id int primary key, v varchar(10));
         CREATE TABLE c (k1 int, k2 varchar(10), v int, primary key (k1, k2));
         CREATE TABLE st (code varchar(12) primary key, v int);
         CREATE TABLE u (x int not null, v int, unique key ux (x));
         INSERT INTO s VALUES (1, 'one'), (2, 'two'), (3, 'three');
         INSERT INTO c VALUES (1, 'a', 10), (1, 'b', 11), (2, 'a', 20);
         INSERT INTO st VALUES ('aa', 1), ('bb', 2);
         INSERT INTO u VALUES (1, 100), (2, 200);",
    )
    .unwrap();
    let tables = ["s", "c", "st", "u"];
    let catalog = log_based(&db, &tables, &[]);
    let cfg = config_for(&db);
    let first = sync(&cfg, Some(&catalog), None);
    let mut target = Target::default();
    target.apply(&first.messages);
    c.query_drop(
        "UPDATE s SET id = 10 WHERE id = 1;
         UPDATE s SET v = 'same key' WHERE id = 2;
         UPDATE c SET k2 = 'c' WHERE k1 = 1 AND k2 = 'b';
         UPDATE st SET code = 'zz' WHERE code = 'aa';
         UPDATE u SET x = 9 WHERE x = 1;
         UPDATE s SET id = id + 100 ORDER BY id DESC;",
    )
    .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&first.last_state()));
    let got: Vec<(String, Value, bool)> = records(&run)
        .into_iter()
        .map(|(s, r, _)| {
            let (v, d) = row(&r);
            (s.trim_start_matches(&format!("{db}-")).to_string(), v, d)
        })
        .collect();
    let want = vec![
        ("s", json!({"id": 1, "v": "one"}), true),
        ("s", json!({"id": 10, "v": "one"}), false),
        ("s", json!({"id": 2, "v": "same key"}), false),
        ("c", json!({"k1": 1, "k2": "b", "v": 11}), true),
        ("c", json!({"k1": 1, "k2": "c", "v": 11}), false),
        ("st", json!({"code": "aa", "v": 1}), true),
        ("st", json!({"code": "zz", "v": 1}), false),
        ("u", json!({"x": 1, "v": 100}), true),
        ("u", json!({"x": 9, "v": 100}), false),
        ("s", json!({"id": 10, "v": "one"}), true),
        ("s", json!({"id": 110, "v": "one"}), false),
        ("s", json!({"id": 3, "v": "three"}), true),
        ("s", json!({"id": 103, "v": "three"}), false),
        ("s", json!({"id": 2, "v": "same key"}), true),
        ("s", json!({"id": 102, "v": "same key"}), false),
    ];
    let want: Vec<(String, Value, bool)> = want
        .into_iter()
        .map(|(s, v, d)| (s.to_string(), v, d))
        .collect();
    assert_eq!(got, want, "{metadata}");
    // Each delete of an old key carries the commit time.
    assert!(records(&run)
        .iter()
        .filter(|(_, r, _)| !r["_sdc_deleted_at"].is_null())
        .all(|(_, r, _)| r["_sdc_deleted_at"].as_str().unwrap().ends_with("+00:00")));
    target.apply(&run.messages);
    assert_matches_source(&target, &db, &tables, metadata);
}

/// The ACTIVATE_VERSION versions of a run, per stream suffix.
fn activations(run: &Run) -> Vec<u64> {
    run.messages
        .iter()
        .filter(|m| m["type"] == "ACTIVATE_VERSION")
        .map(|m| m["version"].as_u64().unwrap())
        .collect()
}

#[test]
fn truncate_and_drop_start_a_new_table_version() {
    let (_case, db) = cdc_case("cdc_truncate", "NO_LOG");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE t (id int primary key, v int);
         CREATE TABLE d (id int primary key);
         INSERT INTO t VALUES (1, 1), (2, 2);
         INSERT INTO d VALUES (1);",
    )
    .unwrap();
    let catalog = log_based(&db, &["t", "d"], &[]);
    let cfg = config_for(&db);
    let first = sync(&cfg, Some(&catalog), None);
    let t_id = format!("{db}-t");
    let v1 = first.last_state()["bookmarks"][&t_id]["version"]
        .as_u64()
        .unwrap();
    let mut target = Target::default();
    target.apply(&first.messages);
    c.query_drop(
        "INSERT INTO t VALUES (3, 3);
         TRUNCATE TABLE t;
         INSERT INTO t VALUES (4, 4);
         DROP TABLE d;",
    )
    .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&first.last_state()));
    // t: the insert before the TRUNCATE with the old version, the ACTIVATE_VERSION of the new
    // one at the TRUNCATE, the insert after it with the new version.
    let seq: Vec<(String, Option<i64>, Option<u64>)> = run
        .messages
        .iter()
        .filter(|m| m["stream"] == t_id.as_str() && m["type"] != "SCHEMA" && m["type"] != "STATE")
        .map(|m| {
            (
                m["type"].as_str().unwrap().to_string(),
                m["record"]["id"].as_i64(),
                m["version"].as_u64(),
            )
        })
        .collect();
    assert_eq!(seq.len(), 3, "{seq:?}");
    let v2 = seq[1].2.unwrap();
    assert!(v2 > v1);
    assert_eq!(
        seq,
        vec![
            ("RECORD".into(), Some(3), Some(v1)),
            ("ACTIVATE_VERSION".into(), None, Some(v2)),
            ("RECORD".into(), Some(4), Some(v2)),
        ]
    );
    let state = run.last_state();
    assert_eq!(state["bookmarks"][&t_id]["version"], json!(v2));
    // d: dropped before the run (so the binlog reader never sees the DROP): a new, empty
    // version removes its rows downstream all the same, before anything else, with a warning.
    let d_id = format!("{db}-d");
    assert!(
        run.stderr
            .contains("its table no longer exists on the server"),
        "{}",
        run.stderr
    );
    let vd = state["bookmarks"][&d_id]["version"].as_u64().unwrap();
    assert_eq!(state["bookmarks"][&d_id]["dropped"], json!(true));
    assert_eq!(activations(&run), vec![vd, v2]);
    target.apply(&run.messages);
    assert_matches_source(&target, &db, &["t"], "after TRUNCATE");
    assert!(target.rows(&d_id, &[]).is_empty());
    // A run with nothing new: no record, no ACTIVATE_VERSION, and still a final STATE; the
    // dropped table's stream is skipped with a warning, its bookmark kept.
    let idle = sync(&cfg, Some(&catalog), Some(&state));
    assert!(idle.messages.iter().all(|m| m["type"] != "RECORD"));
    assert!(activations(&idle).is_empty());
    assert_eq!(idle.messages.last().unwrap()["type"], "STATE");
    assert_eq!(idle.last_state()["bookmarks"][&t_id]["version"], json!(v2));
    assert_eq!(
        idle.last_state()["bookmarks"][&d_id],
        state["bookmarks"][&d_id]
    );
    assert!(
        idle.stderr
            .contains("its table no longer exists on the server: skipped"),
        "{}",
        idle.stderr
    );
    // Back: read again as a new version.
    c.query_drop("CREATE TABLE d (id int primary key); INSERT INTO d VALUES (7);")
        .unwrap();
    let back = sync(&cfg, Some(&catalog), Some(&idle.last_state()));
    target.apply(&back.messages);
    assert_matches_source(&target, &db, &["t", "d"], "a dropped table back");
    assert!(back.last_state()["bookmarks"][&d_id]
        .get("dropped")
        .is_none());
    // Dropped and created again inside the binlog: the DROP starts an empty version, the new
    // table is re-read through a fresh snapshot.
    c.query_drop("DROP TABLE d; CREATE TABLE d (id int primary key); INSERT INTO d VALUES (8);")
        .unwrap();
    let cycle = sync(&cfg, Some(&catalog), Some(&back.last_state()));
    assert!(
        cycle.stderr.contains("its table was dropped"),
        "{}",
        cycle.stderr
    );
    assert!(
        cycle.stderr.contains("the table was replaced"),
        "{}",
        cycle.stderr
    );
    assert_eq!(
        activations(&cycle).len(),
        2,
        "the DROP, then the end of the re-read"
    );
    target.apply(&cycle.messages);
    assert_matches_source(
        &target,
        &db,
        &["t", "d"],
        "a table dropped and created again",
    );
    // Resuming from a STATE before the TRUNCATE replays it with yet another version.
    let before = run
        .messages
        .iter()
        .filter(|m| m["type"] == "STATE")
        .find(|m| m["value"]["bookmarks"][&t_id]["version"] == json!(v1))
        .map(|m| m["value"].clone())
        .expect("a STATE before the TRUNCATE");
    let again = sync(&cfg, Some(&log_based(&db, &["t"], &[])), Some(&before));
    let v3 = activations(&again)[0];
    assert!(v3 > v2);
    target.apply(&again.messages);
    assert_matches_source(&target, &db, &["t"], "after replaying the TRUNCATE");
}

#[test]
fn ddl_on_other_tables_never_touches_a_stream() {
    let (_case, db) = cdc_case("cdc_identity", "NO_LOG");
    let other = fresh_db("cdc_identity_other");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE a (id int primary key, v varchar(10));
         CREATE TABLE b (id int primary key, n int);
         INSERT INTO a VALUES (1, 'x');
         INSERT INTO b VALUES (1, 1);",
    )
    .unwrap();
    db_conn(&other)
        .query_drop("CREATE TABLE a (id int primary key, v varchar(10))")
        .unwrap();
    let catalog = log_based(&db, &["a", "b"], &[]);
    let cfg = config_for(&db);
    let first = sync(&cfg, Some(&catalog), None);
    let mut target = Target::default();
    target.apply(&first.messages);
    // Names that contain a selected table's name, the word `table`, another database's `a`,
    // comments naming `a` and `b`, a temporary table shadowing `a`.
    c.query_drop(format!(
        "CREATE TABLE a_archive LIKE a;
         CREATE TABLE `table` (id int);
         ALTER TABLE `table` ADD c int FIRST;
         /* b */ CREATE TABLE b_copy SELECT * FROM b;
         ALTER TABLE `{other}`.a ADD z int FIRST;
         TRUNCATE `{other}`.`a`;
         RENAME TABLE b_copy TO b_copy2, a_archive TO a_old;
         DROP TABLE IF EXISTS a_old, b_copy2 /* a, b */;
         CREATE TEMPORARY TABLE a (q int);
         DROP TEMPORARY TABLE a;
         INSERT INTO a VALUES (2, 'y');
         UPDATE b SET n = 2 WHERE id = 1;"
    ))
    .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&first.last_state()));
    for bad in ["re-read", "schema change", "dropped", "cannot follow"] {
        assert!(!run.stderr.contains(bad), "{bad}: {}", run.stderr);
    }
    assert!(activations(&run).is_empty());
    assert_eq!(records(&run).len(), 2);
    target.apply(&run.messages);
    assert_matches_source(&target, &db, &["a", "b"], "after other tables' DDL");
}

crate::support::under_full_and_no_log!(swap_case: a_table_swap_heals_with_a_new_version_under_full, a_table_swap_heals_with_a_new_version_under_no_log);

fn swap_case(metadata: &str) {
    let (_case, db) = cdc_case("cdc_heal", metadata);
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE t (id int primary key, a varchar(10), b int);
         CREATE TABLE keep (id int primary key);
         INSERT INTO t VALUES (1, 'one', 1), (2, 'two', 2), (3, 'three', 3);",
    )
    .unwrap();
    let catalog = log_based(&db, &["t", "keep"], &[]);
    let cfg = config_for(&db);
    let first = sync(&cfg, Some(&catalog), None);
    let t_id = format!("{db}-t");
    let v1 = first.last_state()["bookmarks"][&t_id]["version"]
        .as_u64()
        .unwrap();
    let mut target = Target::default();
    target.apply(&first.messages);
    // gh-ost: a ghost table with the columns in another order, filled, then swapped in; rows
    // change after the cut-over; the other stream keeps streaming.
    c.query_drop(
        "INSERT INTO keep VALUES (1);
         CREATE TABLE _t_gho (b int, id int primary key, a varchar(10));
         INSERT INTO _t_gho SELECT b, id, a FROM t WHERE id <> 3;
         INSERT INTO _t_gho VALUES (7, 99, 'ghost');
         RENAME TABLE t TO _t_del, _t_gho TO t;
         INSERT INTO t VALUES (8, 100, 'after');
         UPDATE t SET a = 'upd' WHERE id = 1;
         DELETE FROM t WHERE id = 2;
         INSERT INTO keep VALUES (2);",
    )
    .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&first.last_state()));
    assert!(
        run.stderr
            .contains("the table was replaced by another (RENAME TABLE t TO _t_del, _t_gho TO t)"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("re-read through a fresh snapshot"));
    assert_eq!(run.records(&format!("{db}-keep")).len(), 2, "keep streams");
    let acts = activations(&run);
    assert_eq!(
        acts.len(),
        1,
        "one ACTIVATE_VERSION, at the end of the re-read"
    );
    assert!(acts[0] > v1);
    assert_eq!(run.messages.last().unwrap()["type"], "STATE");
    let state = run.last_state();
    let bm = &state["bookmarks"][&t_id];
    assert_eq!(bm["version"], json!(acts[0]));
    assert!(
        bm.get("resnapshot").is_none() && bm["log_file"].is_string(),
        "{bm}"
    );
    target.apply(&run.messages);
    assert_matches_source(&target, &db, &["t", "keep"], "after the swap");
    assert!(target.versions(&t_id).iter().all(|v| *v == Some(acts[0])));
    // Later changes stream from the re-snapshot's position with the new version.
    c.query_drop("UPDATE t SET a = 'later' WHERE id = 99; DELETE FROM t WHERE id = 1;")
        .unwrap();
    let next = sync(&cfg, Some(&catalog), Some(&state));
    assert!(activations(&next).is_empty());
    assert_eq!(next.records(&t_id).len(), 2);
    target.apply(&next.messages);
    assert_matches_source(&target, &db, &["t", "keep"], "after the swap, streaming");
}

#[test]
fn a_purged_binlog_heals_with_a_new_version() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_purged");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE t (id int primary key, v int);
         INSERT INTO t VALUES (1, 1), (2, 2);",
    )
    .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let cfg = config_for(&db);
    let first = sync(&cfg, Some(&catalog), None);
    let t_id = format!("{db}-t");
    let old = first.last_state();
    let v1 = old["bookmarks"][&t_id]["version"].as_u64().unwrap();
    let mut target = Target::default();
    target.apply(&first.messages);
    // Changes in the bookmarked file, which is then purged.
    let mut root = root_conn();
    c.query_drop("DELETE FROM t WHERE id = 1; INSERT INTO t VALUES (3, 3);")
        .unwrap();
    root.query_drop("FLUSH BINARY LOGS").unwrap();
    let current: String = root
        .query_first::<mysql::Row, _>("SHOW MASTER STATUS")
        .unwrap()
        .unwrap()
        .get(0)
        .unwrap();
    // MariaDB keeps a file until its binlog checkpoint moved on: retry for a while.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        root.query_drop(format!("PURGE BINARY LOGS TO '{current}'"))
            .unwrap();
        let oldest: String = root
            .query_first::<mysql::Row, _>("SHOW BINARY LOGS")
            .unwrap()
            .unwrap()
            .get(0)
            .unwrap();
        if oldest == current {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{oldest} was not purged"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    c.query_drop("UPDATE t SET v = 20 WHERE id = 2").unwrap();
    let mut strict = cfg.clone();
    strict["auto_resnapshot"] = json!(false);
    let refused = sync_any(&strict, Some(&catalog), Some(&old));
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("was purged from the server"),
        "{}",
        refused.stderr
    );
    let run = sync(&cfg, Some(&catalog), Some(&old));
    assert!(
        run.stderr.contains("was purged from the server"),
        "{}",
        run.stderr
    );
    let acts = activations(&run);
    assert_eq!(acts.len(), 1);
    assert!(acts[0] > v1);
    assert_eq!(run.records(&t_id).len(), 2, "the whole table, read again");
    target.apply(&run.messages);
    assert_matches_source(&target, &db, &["t"], "after the purge");
    assert_eq!(
        run.last_state()["bookmarks"][&t_id]["log_file"],
        json!(current)
    );
}

/// In BATCH mode a re-snapshot cannot end with an ACTIVATE_VERSION (SDK targets would delete
/// the BATCH rows it just loaded): it starts with one, before the files.
#[test]
fn a_batch_mode_resnapshot_activates_its_version_before_the_files() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_heal_batch");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key); INSERT INTO t VALUES (1), (2), (3);")
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config_for(&db);
    cfg["batch_config"] = json!({
        "encoding": {"format": "jsonl", "compression": "none"},
        "storage": {"root": format!("file://{}", dir.path().display())},
        "batch_size": 2,
    });
    let id = format!("{db}-t");
    let state = json!({"bookmarks": {&id: {"version": 5, "initial_full_table_complete": true, "resnapshot": "test"}}});
    let run = sync(&cfg, Some(&log_based(&db, &["t"], &[])), Some(&state));
    let kinds: Vec<&str> = run
        .messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .filter(|t| *t != "STATE")
        .collect();
    assert_eq!(kinds, ["SCHEMA", "ACTIVATE_VERSION", "BATCH", "BATCH"]);
    assert!(activations(&run)[0] > 5);
    let bm = &run.last_state()["bookmarks"][&id];
    assert!(
        bm["log_file"].is_string() && bm.get("resnapshot").is_none(),
        "{bm}"
    );
    assert_eq!(bm["version"], json!(activations(&run)[0]));
}
