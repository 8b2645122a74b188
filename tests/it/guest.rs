//! A good guest on a busy primary: runs that need no snapshot take no lock, snapshots are
//! lock-free first on MariaDB, and a long-running query on a selected table neither blocks the
//! run nor makes other sessions' writes wait.

use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

/// The general log (as a table) for the life of the guard; the settings' guards keep other
/// tests that change global settings out meanwhile.
struct GeneralLog {
    // Dropped in this order: the log off first, then its output back.
    _on: GlobalSetting,
    _output: GlobalSetting,
}

impl GeneralLog {
    fn on() -> GeneralLog {
        let output = set_global("log_output", "TABLE");
        let on = set_global("general_log", "ON");
        GeneralLog {
            _on: on,
            _output: output,
        }
    }

    /// Every command logged for `user` (prepared statements included), with its type.
    fn all_statements(user: &str) -> Vec<(String, String)> {
        root_conn()
            .exec_map(
                "SELECT command_type, CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE user_host LIKE ?",
                (format!("{user}[{user}]%"),),
                |row: (String, String)| row,
            )
            .unwrap()
    }

    /// Statements (`Query` commands) logged for `user`.
    fn statements(user: &str) -> Vec<String> {
        GeneralLog::all_statements(user)
            .into_iter()
            .filter(|(kind, _)| kind == "Query")
            .map(|(_, a)| a)
            .collect()
    }
}

fn as_user(mut cfg: Value, user: &str) -> Value {
    cfg["user"] = json!(user);
    cfg["password"] = json!(format!("pw-{user}"));
    cfg["max_parallel_streams"] = json!(2);
    cfg
}

/// A user with every privilege (RELOAD included), so nothing but the tap's choice decides.
fn all_privileges(user: &str) {
    create_user(user, &format!("pw-{user}"), &["ALL PRIVILEGES ON *.*"]);
}

fn lock_statements(user: &str) -> Vec<String> {
    GeneralLog::statements(user)
        .into_iter()
        .filter(|s| {
            let u = s.to_ascii_uppercase();
            u.contains("FLUSH") || u.contains("LOCK TABLES")
        })
        .collect()
}

#[test]
fn runs_that_need_no_snapshot_take_no_lock_and_loads_are_lock_free_first() {
    let _g = cdc_lock();
    let _global = server_wide_lock(); // a forced global read lock below
    let db = fresh_db("guest_nolock");
    db_conn(&db)
        .query_drop(
            "CREATE TABLE l (id int primary key, v int);
             CREATE TABLE i (id int primary key, ts datetime not null);
             INSERT INTO l VALUES (1, 1), (2, 2);
             INSERT INTO i VALUES (1, '2024-01-01'), (2, '2024-01-02');",
        )
        .unwrap();
    all_privileges("guest1");
    let cfg = as_user(config_for(&db), "guest1");
    let mut both = log_based(&db, &["l", "i"], &[]);
    select_all(
        &mut both,
        &[
            (&format!("{db}-l"), "LOG_BASED", None),
            (&format!("{db}-i"), "INCREMENTAL", Some("ts")),
        ],
    );
    let mut only_l = both.clone();
    only_streams(&mut only_l, &[&format!("{db}-l")]);
    let mut only_i = both.clone();
    only_streams(&mut only_i, &[&format!("{db}-i")]);
    let general = GeneralLog::on();
    // An initial load with RELOAD granted: MariaDB's lock-free method, no FLUSH.
    let first = sync(&cfg, Some(&both), None);
    assert!(
        first
            .stderr
            .contains("via lock-free (binlog_snapshot_file/position)"),
        "{}",
        first.stderr
    );
    let state = first.last_state();
    db_conn(&db)
        .query_drop("INSERT INTO l VALUES (3, 3); INSERT INTO i VALUES (3, '2024-01-03')")
        .unwrap();
    // LOG_BASED only, past the load: no worker connection, no snapshot, no lock.
    let cdc = sync(&cfg, Some(&only_l), Some(&state));
    assert_eq!(cdc.records(&format!("{db}-l")).len(), 1);
    assert!(!cdc.stderr.contains("snapshot:"), "{}", cdc.stderr);
    // INCREMENTAL only: plain connections, no snapshot, no lock.
    let incr = sync(&cfg, Some(&only_i), Some(&state));
    assert_eq!(incr.records(&format!("{db}-i")).len(), 2);
    assert!(
        incr.stderr.contains("snapshot: not needed"),
        "{}",
        incr.stderr
    );
    let logged = GeneralLog::statements("guest1");
    assert!(
        logged.iter().any(|s| s.contains("binlog_snapshot_")),
        "the general log holds the tap's statements: {logged:?}"
    );
    assert_eq!(lock_statements("guest1"), Vec::<String>::new());
    // A FULL_TABLE load asks no GTID position: `BINLOG_GTID_POS` reads the binlog file up to
    // the snapshot's position, and only LOG_BASED loads need it (the first run asked it).
    all_privileges("guest3");
    let mut full = only_l.clone();
    select_all(&mut full, &[(&format!("{db}-l"), "FULL_TABLE", None)]);
    let ft = sync(&as_user(config_for(&db), "guest3"), Some(&full), None);
    assert_eq!(ft.records(&format!("{db}-l")).len(), 3);
    let line = ft.stderr.lines().find(|l| l.contains("share one snapshot"));
    assert!(
        line.is_some_and(|l| l.contains("binlog.") && !l.contains("GTID")),
        "{}",
        ft.stderr
    );
    let gtid_reads = |user: &str| {
        GeneralLog::all_statements(user)
            .iter()
            .filter(|(_, s)| s.contains("BINLOG_GTID_POS"))
            .count()
    };
    assert!(gtid_reads("guest1") > 0, "the LOG_BASED load read its GTID");
    assert_eq!(gtid_reads("guest3"), 0);
    // The check sees a lock when one is taken (a forced global lock, as another user).
    all_privileges("guest2");
    let mut forced = as_user(config_for(&db), "guest2");
    forced["snapshot_method"] = json!("global_lock");
    sync(&forced, Some(&only_l), None);
    assert_eq!(
        lock_statements("guest2"),
        vec![
            "FLUSH TABLES WITH READ LOCK".to_string(),
            "UNLOCK TABLES".to_string()
        ]
    );
    drop(general);
}

/// Runs `sql` on its own connection in a thread; returns when it ended.
fn in_background(sql: String) -> std::thread::JoinHandle<Instant> {
    std::thread::spawn(move || {
        root_conn().query_drop(&sql).unwrap();
        Instant::now()
    })
}

#[test]
fn a_long_query_on_a_selected_table_blocks_neither_the_run_nor_other_writes() {
    let _g = cdc_lock();
    let _running = long_query();
    let db = fresh_db("guest_longq");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE l (id int primary key, v int);
         CREATE TABLE l2 (id int primary key, v int);
         CREATE TABLE w (id int auto_increment primary key, at datetime(6));
         INSERT INTO l VALUES (1, 1);
         INSERT INTO l2 VALUES (1, 1);",
    )
    .unwrap();
    all_privileges("guest3");
    let cfg = as_user(config_for(&db), "guest3");
    // Two streams, so two workers would share one snapshot.
    let catalog = log_based(&db, &["l", "l2"], &[]);
    for (what, state) in [
        ("an initial load", None),
        (
            "a binlog-only run",
            Some(sync(&cfg, Some(&catalog), None).last_state()),
        ),
    ] {
        // A report that keeps the selected table open for 4 s (a global read lock would wait
        // for it, and every write on the server would queue behind that lock).
        let long = in_background(format!("SELECT SLEEP(4), id FROM `{db}`.l"));
        std::thread::sleep(Duration::from_millis(300));
        let writer = std::thread::spawn({
            let db = db.clone();
            move || {
                let mut w = db_conn(&db);
                (0..20)
                    .map(|_| {
                        w.query_drop("INSERT INTO w (at) VALUES (NOW(6))").unwrap();
                        std::thread::sleep(Duration::from_millis(20));
                        Instant::now()
                    })
                    .last()
                    .unwrap()
            }
        });
        let run = sync(&cfg, Some(&catalog), state.as_ref());
        let run_done = Instant::now();
        let writes_done = writer.join().unwrap();
        let long_done = long.join().unwrap();
        assert!(
            run_done < long_done,
            "{what}: the run waited for the long query: {}",
            run.stderr
        );
        assert!(
            writes_done < long_done,
            "{what}: other sessions' writes waited for the long query"
        );
        assert!(!run.stderr.contains("FLUSH TABLES"), "{}", run.stderr);
    }
}

/// Every table's greatest key is read once per load, chunked tables included, on a connection
/// of the snapshot (the one that reads the table, for an unchunked one), and MariaDB sessions do
/// not read engine-independent statistics.
#[test]
fn each_table_s_greatest_key_is_read_once_inside_the_snapshot() {
    let _g = cdc_lock();
    let db = fresh_db("guest_maxkey");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE big (id int PRIMARY KEY, v varchar(20));
         INSERT INTO big SELECT seq, CONCAT('v', seq) FROM seq_1_to_30000;
         ANALYZE TABLE big;",
    )
    .unwrap();
    for t in 0..5 {
        c.query_drop(format!(
            "CREATE TABLE s{t} (id int PRIMARY KEY); INSERT INTO s{t} VALUES (1), (2)"
        ))
        .unwrap();
    }
    all_privileges("guest_mk");
    let mut cfg = as_user(config_for(&db), "guest_mk");
    cfg["chunk_rows"] = json!(10_000);
    let general = GeneralLog::on();
    let run = sync(&cfg, None, None);
    drop(general);
    assert!(run.stderr.contains("in 3 chunks"), "{}", run.stderr);
    assert_eq!(run.raw_records().len(), 30_000 + 5 * 2);
    let logged = GeneralLog::statements("guest_mk");
    assert!(
        logged
            .iter()
            .any(|s| s == "SET SESSION use_stat_tables = 'NEVER'"),
        "{logged:?}"
    );
    // Threads that started a consistent-snapshot transaction.
    let by_thread: Vec<(u64, String)> = root_conn()
        .exec_map(
            "SELECT thread_id, CONVERT(argument USING utf8mb4) FROM mysql.general_log WHERE user_host LIKE 'guest_mk[guest_mk]%' AND command_type = 'Query' ORDER BY event_time",
            (),
            |(t, a): (u64, String)| (t, a),
        )
        .unwrap();
    let snapshot_threads: Vec<u64> = by_thread
        .iter()
        .filter(|(_, a)| a.contains("WITH CONSISTENT SNAPSHOT"))
        .map(|(t, _)| *t)
        .collect();
    for (t, a) in by_thread.iter().filter(|(_, a)| a.contains("DESC LIMIT 1")) {
        assert!(
            snapshot_threads.contains(t),
            "read outside the snapshot: {a}"
        );
    }
    for table in ["big", "s0", "s1", "s2", "s3", "s4"] {
        let max_reads = logged
            .iter()
            .filter(|s| {
                s.contains(&format!("FROM `{db}`.`{table}` ORDER BY")) && s.contains("DESC LIMIT 1")
            })
            .count();
        assert_eq!(max_reads, 1, "greatest-key reads of {table}: {logged:?}");
    }
}
