//! Parallel extraction: one consistent snapshot, chunks, fallbacks, resumable chunk state.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

fn workers_config(db: &str, workers: u64) -> Value {
    let mut cfg = config_for(db);
    cfg["max_parallel_streams"] = json!(workers);
    cfg
}

/// Record texts per stream, sorted: the multiset a run produced.
fn multiset(run: &Run) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (line, msg) in run.lines.iter().zip(&run.messages) {
        if msg["type"] == "RECORD" {
            m.entry(msg["stream"].as_str().unwrap().to_string())
                .or_default()
                .push(record_text(line).to_string());
        }
    }
    for v in m.values_mut() {
        v.sort();
    }
    m
}

#[test]
fn parallel_and_sequential_runs_emit_the_same_records() {
    let db = fresh_db("par_fixture");
    load_fixture(&db, "types.sql");
    let seq = sync(&workers_config(&db, 1), None, None);
    let par = sync(&workers_config(&db, 4), None, None);
    assert!(
        par.stderr
            .contains("4 worker connection(s) share one snapshot"),
        "{}",
        par.stderr
    );
    let (a, b) = (multiset(&seq), multiset(&par));
    assert_eq!(a.len(), 13);
    assert_eq!(a, b);
    // Interleaving happens only at whole messages, and each SCHEMA precedes its records.
    let mut schema_seen = HashSet::new();
    for m in &par.messages {
        let s = m["stream"].as_str().unwrap_or_default().to_string();
        match m["type"].as_str().unwrap() {
            "SCHEMA" => {
                schema_seen.insert(s);
            }
            "RECORD" | "ACTIVATE_VERSION" => assert!(schema_seen.contains(&s), "{s}"),
            _ => {}
        }
    }
}

fn fill(db: &str, ddl: &str, insert: &str) {
    let mut c = db_conn(db);
    c.query_drop(ddl).unwrap();
    c.query_drop(insert).unwrap();
    c.query_drop("ANALYZE TABLE big").ok();
}

#[test]
fn chunked_reads_return_every_row_exactly_once() {
    let cases = [
        (
            "int",
            "CREATE TABLE big (id bigint unsigned primary key, v varchar(20))",
            "INSERT INTO big SELECT seq * 7919 % 2000003 + IF(seq > 900000, 1000000000000, 0), CONCAT('v', seq) FROM seq_1_to_1000000",
        ),
        (
            "string",
            "CREATE TABLE big (code varchar(40) primary key, v varchar(20))",
            "INSERT INTO big SELECT CONCAT(IF(seq % 7 = 0, 'Ä', IF(seq % 11 = 0, 'z', '')), MD5(seq)), CONCAT('v', seq) FROM seq_1_to_1000000",
        ),
        (
            "composite",
            "CREATE TABLE big (a int, b varchar(20), v varchar(20), primary key (a, b))",
            "INSERT INTO big SELECT seq % 97, CONCAT('k', seq), CONCAT('v', seq) FROM seq_1_to_1000000",
        ),
    ];
    for (shape, ddl, insert) in cases {
        let db = fresh_db(&format!("chunk_{shape}"));
        fill(&db, ddl, insert);
        let mut cfg = workers_config(&db, 3);
        cfg["chunk_rows"] = json!(100_000);
        let run = sync(&cfg, None, None);
        assert!(
            run.stderr.contains("chunks of about 100000 rows"),
            "{shape}: {}",
            run.stderr
        );
        let id = format!("{db}-big");
        let mut seen = HashSet::new();
        let mut n = 0;
        for r in run.records(&id) {
            n += 1;
            let key = match shape {
                "int" => r["id"].to_string(),
                "string" => r["code"].as_str().unwrap().to_string(),
                _ => format!("{}|{}", r["a"], r["b"]),
            };
            assert!(seen.insert(key), "{shape}: a key was emitted twice");
        }
        assert_eq!(n, 1_000_000, "{shape}");
        let state = run.last_state();
        assert_eq!(state["bookmarks"][&id]["initial_full_table_complete"], true);
        assert!(state["bookmarks"][&id].get("chunks").is_none());
        let av = run
            .messages
            .iter()
            .filter(|m| m["type"] == "ACTIVATE_VERSION")
            .count();
        assert_eq!(
            av, 2,
            "{shape}: first-ever sync: one ACTIVATE_VERSION before, one after all chunks"
        );
        assert_eq!(
            run.messages
                .iter()
                .rev()
                .find(|m| m["type"] == "ACTIVATE_VERSION"),
            run.messages.iter().rev().nth(1)
        );
        db_conn(&db)
            .query_drop(format!("DROP DATABASE `{db}`"))
            .unwrap();
    }
}

#[test]
fn snapshot_fallbacks_follow_privileges() {
    let _global = server_wide_lock(); // forced FLUSH TABLES WITH READ LOCK below
    let db = fresh_db("fallback");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t1 (id int primary key); CREATE TABLE t2 (id int primary key); INSERT INTO t1 VALUES (1),(2); INSERT INTO t2 VALUES (3)").unwrap();
    for (user, grants) in [
        ("fb_norel", format!("SELECT, LOCK TABLES ON `{db}`.*")),
        ("fb_select", format!("SELECT ON `{db}`.*")),
    ] {
        create_user(user, &format!("pw-{user}"), &[&grants]);
    }
    let as_user = |user: &str, method: Option<&str>| {
        let mut cfg = workers_config(&db, 2);
        cfg["user"] = json!(user);
        cfg["password"] = json!(format!("pw-{user}"));
        if let Some(m) = method {
            cfg["snapshot_method"] = json!(m);
        }
        cfg
    };
    let tap_cfg = |method: &str| {
        let mut cfg = workers_config(&db, 2);
        cfg["snapshot_method"] = json!(method);
        cfg
    };
    let expect = |cfg: Value, needle: &str| {
        let run = sync(&cfg, None, None);
        assert!(
            run.stderr.contains(needle),
            "expected {needle:?}: {}",
            run.stderr
        );
        assert_eq!(run.records(&format!("{db}-t1")).len(), 2);
        assert_eq!(run.records(&format!("{db}-t2")).len(), 1);
        run
    };
    // The test user has every privilege, yet MariaDB's lock-free method comes first: no lock.
    let run = expect(
        workers_config(&db, 2),
        "via lock-free (binlog_snapshot_file/position)",
    );
    assert!(!run.stderr.contains("not possible"), "{}", run.stderr);
    expect(tap_cfg("global_lock"), "via FLUSH TABLES WITH READ LOCK");
    expect(
        tap_cfg("table_lock"),
        "via FLUSH TABLES <tables> WITH READ LOCK",
    );
    expect(tap_cfg("lock_tables"), "via LOCK TABLES <tables> READ");
    let run = expect(
        tap_cfg("independent"),
        "via independent per-worker snapshots",
    );
    assert!(run
        .stderr
        .contains("WARNING snapshot: snapshot_method is 'independent'"));
    // Without RELOAD the FLUSH variants are refused when forced; auto needs none of them.
    expect(
        as_user("fb_norel", None),
        "via lock-free (binlog_snapshot_file/position)",
    );
    let run = sync_any(&as_user("fb_norel", Some("global_lock")), None, None);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr
            .contains("FLUSH TABLES WITH READ LOCK not possible"),
        "{}",
        run.stderr
    );
    expect(
        as_user("fb_norel", Some("lock_tables")),
        "via LOCK TABLES <tables> READ",
    );
    // SELECT only and LOCK TABLES forced: one clear error saying what to grant.
    let run = sync_any(&as_user("fb_select", Some("lock_tables")), None, None);
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("cannot take a consistent snapshot"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("grant RELOAD or LOCK TABLES"),
        "{}",
        run.stderr
    );
    assert!(run.messages.is_empty());
}

/// A writer keeps moving money between two tables (and adding/removing ledger rows) while a
/// parallel, chunked snapshot reads them: the emitted rows must satisfy the invariants the
/// writer keeps in every committed transaction.
#[test]
fn parallel_snapshot_is_consistent_under_concurrent_writes() {
    let db = fresh_db("consistency");
    let n = 60_000u64;
    let mut c = db_conn(&db);
    c.query_drop(format!(
        "CREATE TABLE acct_a (id int primary key, bal bigint not null, tx_count bigint not null, pad varchar(100));
         CREATE TABLE acct_b (id int primary key, bal bigint not null, deleted bigint not null, pad varchar(100));
         CREATE TABLE ledger (id bigint auto_increment primary key, a_id int, b_id int, amount bigint);
         INSERT INTO acct_a SELECT seq, 1000, 0, REPEAT('x', 100) FROM seq_1_to_{n};
         INSERT INTO acct_b SELECT seq, 1000, 0, REPEAT('y', 100) FROM seq_1_to_{n};"
    ))
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let committed = Arc::new(AtomicU64::new(0));
    let writer = {
        let (stop, committed, db) = (stop.clone(), committed.clone(), db.clone());
        std::thread::spawn(move || {
            let mut c = db_conn(&db);
            let mut x: u64 = 42;
            let mut next = || {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) % n + 1
            };
            while !stop.load(Ordering::SeqCst) {
                let (i, j, amt) = (next(), next(), next() % 50 + 1);
                let delete = committed.load(Ordering::SeqCst) % 5 == 4;
                let mut sql = format!(
                    "START TRANSACTION;
                     UPDATE acct_a SET bal = bal - {amt}, tx_count = tx_count + 1 WHERE id = {i};
                     UPDATE acct_b SET bal = bal + {amt} WHERE id = {j};
                     INSERT INTO ledger (a_id, b_id, amount) VALUES ({i}, {j}, {amt});"
                );
                if delete {
                    sql.push_str(&format!(
                        "DELETE FROM ledger ORDER BY id LIMIT 1; UPDATE acct_b SET deleted = deleted + 1 WHERE id = {j};"
                    ));
                }
                sql.push_str("COMMIT;");
                c.query_drop(sql).unwrap();
                committed.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    // Let the writer get going, then snapshot in parallel while it keeps writing.
    while committed.load(Ordering::SeqCst) < 200 {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let mut cfg = workers_config(&db, 3);
    cfg["chunk_rows"] = json!(10_000);
    let run = sync(&cfg, None, None);
    let during = committed.load(Ordering::SeqCst);
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    assert!(
        run.stderr.contains("chunks of about 10000 rows"),
        "{}",
        run.stderr
    );
    let a = run.records(&format!("{db}-acct_a"));
    let b = run.records(&format!("{db}-acct_b"));
    let ledger = run.records(&format!("{db}-ledger"));
    assert_eq!(a.len() as u64, n);
    assert_eq!(b.len() as u64, n);
    let sum = |rs: &[&Value], k: &str| rs.iter().map(|r| r[k].as_i64().unwrap()).sum::<i64>();
    assert_eq!(
        sum(&a, "bal") + sum(&b, "bal"),
        2 * 1000 * n as i64,
        "money moved in a transaction is never half-seen"
    );
    let tx = sum(&a, "tx_count");
    assert_eq!(
        ledger.len() as i64 + sum(&b, "deleted"),
        tx,
        "ledger rows match the transfers the snapshot saw"
    );
    assert!(tx >= 200, "the snapshot saw the writes before it ({tx})");
    let after = {
        let mut c = db_conn(&db);
        c.query_first::<i64, _>("SELECT SUM(tx_count) FROM acct_a")
            .unwrap()
            .unwrap()
    };
    assert!(after > tx, "the writer kept committing while the tap read ({tx} seen, {after} at the end, {during} during)");
}

#[test]
fn interrupted_chunked_run_resumes_unfinished_chunks_only() {
    let db = fresh_db("chunk_resume");
    fill(
        &db,
        "CREATE TABLE big (id int primary key, v varchar(40))",
        "INSERT INTO big SELECT seq, CONCAT('value-', seq) FROM seq_1_to_300000",
    );
    let id = format!("{db}-big");
    let mut cfg = workers_config(&db, 2);
    cfg["chunk_rows"] = json!(30_000);
    cfg["state_interval_rows"] = json!(2_000);
    let first = run_and_kill_after(&cfg, None, None, 150_000);
    let state = first.last_state();
    let bm = &state["bookmarks"][&id];
    let chunks = bm["chunks"].as_array().expect("chunk list in state");
    let done: Vec<&Value> = chunks.iter().filter(|c| c["done"] == true).collect();
    assert!(
        !done.is_empty() && done.len() < chunks.len(),
        "some but not all chunks done: {bm}"
    );

    let second = sync(&cfg, None, Some(&state));
    assert!(
        second.stderr.contains("resuming FULL_TABLE version"),
        "{}",
        second.stderr
    );
    let version = bm["version"].clone();
    let in_done = |k: i64| {
        done.iter().any(|c| {
            c["lo"].as_i64().is_none_or(|lo| k > lo) && c["hi"].as_i64().is_none_or(|hi| k <= hi)
        })
    };
    let mut keys: HashSet<i64> = first
        .records(&id)
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    for r in second.records(&id) {
        let k = r["id"].as_i64().unwrap();
        assert!(!in_done(k), "key {k} re-read from a finished chunk");
        keys.insert(k);
    }
    assert_eq!(keys.len(), 300_000, "every row after resuming");
    assert!(second
        .messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .all(|m| m["version"] == version));
    let av: Vec<&Value> = second
        .messages
        .iter()
        .filter(|m| m["type"] == "ACTIVATE_VERSION")
        .collect();
    assert_eq!(av.len(), 1);
    assert_eq!(av[0]["version"], version);
    assert_eq!(
        second.last_state()["bookmarks"][&id],
        json!({"version": version, "initial_full_table_complete": true})
    );
}

/// A table read whole by one worker and interrupted resumes after its last written key, also
/// when the next run has idle workers that would otherwise split it (or a table above
/// `chunk_rows` would otherwise be chunked): chunks planned from the start would send again
/// every row the first run wrote.
#[test]
fn an_interrupted_whole_read_resumes_after_its_key_when_workers_are_idle() {
    let db = fresh_db("whole_resume");
    fill(
        &db,
        "CREATE TABLE big (id int primary key, v varchar(40))",
        "INSERT INTO big SELECT seq, CONCAT('value-', seq) FROM seq_1_to_300000",
    );
    let id = format!("{db}-big");
    let mut cfg = workers_config(&db, 1);
    cfg["state_interval_rows"] = json!(2_000);
    let first = run_and_kill_after(&cfg, None, None, 100_000);
    let state = first.last_state();
    let bm = &state["bookmarks"][&id];
    assert!(bm.get("chunks").is_none(), "read whole: {bm}");
    let last = bm["last_pk_fetched"]["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("a whole read in progress: {bm}"));
    assert!(last > 0 && last < 300_000, "{bm}");

    for chunk_rows in [1_000_000, 50_000] {
        let mut cfg = workers_config(&db, 2);
        cfg["chunk_rows"] = json!(chunk_rows);
        let second = sync(&cfg, None, Some(&state));
        assert!(
            second.stderr.contains("resuming FULL_TABLE version"),
            "{}",
            second.stderr
        );
        let keys: Vec<i64> = second
            .records(&id)
            .iter()
            .map(|r| r["id"].as_i64().unwrap())
            .collect();
        assert_eq!(keys.first(), Some(&(last + 1)), "chunk_rows {chunk_rows}");
        assert_eq!(
            keys.len() as i64,
            300_000 - last,
            "chunk_rows {chunk_rows}: only the rows after the last written key"
        );
        assert_eq!(
            second.last_state()["bookmarks"][&id],
            json!({"version": bm["version"], "initial_full_table_complete": true})
        );
    }
}
