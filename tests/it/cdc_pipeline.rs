//! LOG_BASED lived like a pipeline: a random writer changes tables (inserts, updates, deletes,
//! key changes on single, composite, string and unique-fallback keys, multi-table and rolled
//! back transactions, bulk updates, ADD COLUMN … AFTER, TRUNCATE, a gh-ost table swap, DDL on
//! tables whose names contain a selected table's name) while the tap runs again and again,
//! each run resumed from the last STATE it printed and most of them SIGKILLed after a random
//! number of lines. Replaying every message into the model target must give exactly what a
//! fresh read of the source gives. Deterministic seed (`TAP_MYSQL_PIPELINE_SEED` to try
//! others); bounded in steps and time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::Conn;
use serde_json::{json, Value};

use crate::model_target::{assert_matches_source, Target};
use crate::support::*;

const TABLES: [&str; 4] = ["a", "b", "c", "u"];
const WRITER_STEPS: u64 = 500;
const WRITER_TIME: Duration = Duration::from_secs(12);

fn seed() -> u64 {
    std::env::var("TAP_MYSQL_PIPELINE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_129)
}

#[test]
fn random_writer_with_killed_runs_ends_exact_under_no_log() {
    pipeline_case("NO_LOG", seed(), false);
}

#[test]
fn random_writer_with_killed_runs_ends_exact_under_full() {
    pipeline_case("FULL", seed().wrapping_add(1), false);
}

/// The same life with positions by GTID (`use_gtid`): which transactions a stream already has is
/// decided by GTIDs, not by file and position.
#[test]
fn random_writer_with_killed_runs_ends_exact_by_gtid() {
    pipeline_case("NO_LOG", seed().wrapping_add(2), true);
}

fn pipeline_case(metadata: &str, seed: u64, use_gtid: bool) {
    let _g = cdc_lock();
    let _m = set_global("binlog_row_metadata", metadata);
    let mode = format!(
        "{}{}",
        metadata.to_lowercase(),
        if use_gtid { "_gtid" } else { "" }
    );
    let db = fresh_db(&format!("cdc_pipe_{mode}"));
    let other = fresh_db(&format!("cdc_pipe_other_{mode}"));
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE a (id int primary key, v varchar(20), n int);
         CREATE TABLE b (k1 int, k2 varchar(12), amount decimal(10,2), primary key (k1, k2));
         CREATE TABLE c (code varchar(16) primary key, n int, ts datetime(3));
         CREATE TABLE u (x int not null, y int, unique key ux (x));",
    )
    .unwrap();
    db_conn(&other)
        .query_drop("CREATE TABLE a (id int primary key, v varchar(20))")
        .unwrap();
    for i in 0..40 {
        c.query_drop(format!(
            "INSERT INTO a (id, v, n) VALUES ({i}, 'a{i}', {i});
             INSERT INTO b (k1, k2, amount) VALUES ({}, 'k{i}', {i}.25);
             INSERT INTO c (code, n, ts) VALUES ('c{i:03}', {i}, '2024-01-01 00:00:{:02}.5');
             INSERT INTO u (x, y) VALUES ({i}, {i});",
            i % 7,
            i % 60
        ))
        .unwrap();
    }
    let catalog = log_based(&db, &TABLES, &[]);
    let mut cfg = config_for(&db);
    cfg["use_gtid"] = json!(use_gtid);
    let mut target = Target::default();
    let first = sync(&cfg, Some(&catalog), None);
    target.apply(&first.messages);
    let mut state: Value = first.last_state();

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (db, other, stop) = (db.clone(), other.clone(), stop.clone());
        std::thread::spawn(move || Writer::new(&db, &other, seed).run(&stop))
    };
    let mut r = Lcg(seed ^ 0x5eed);
    let (mut runs, mut kills) = (0, 0);
    let started = Instant::now();
    while !writer.is_finished() && started.elapsed() < WRITER_TIME + Duration::from_secs(5) {
        let run = if r.below(4) != 0 {
            kills += 1;
            run_and_kill_after(&cfg, Some(&catalog), Some(&state), 1 + r.below(40) as usize)
        } else {
            sync(&cfg, Some(&catalog), Some(&state))
        };
        runs += 1;
        target.apply(&run.messages);
        if let Some(s) = run.messages.iter().rev().find(|m| m["type"] == "STATE") {
            state = s["value"].clone();
        }
    }
    stop.store(true, Ordering::SeqCst);
    let stats = writer.join().expect("writer thread");
    // Catch up without interruptions, then the target must equal the source.
    let mut by_gtid = 0;
    for _ in 0..2 {
        let run = sync(&cfg, Some(&catalog), Some(&state));
        by_gtid += run
            .stderr
            // Logged as each binlog read plans its start, even with nothing new to read (the
            // dump itself is skipped then, so its own line may be absent).
            .matches("binlog: reading from GTID position")
            .count();
        target.apply(&run.messages);
        state = run.last_state();
        runs += 1;
    }
    let context = format!("{mode}, seed {seed}: {runs} runs ({kills} killed), writer {stats:?}");
    assert_eq!(by_gtid > 0, use_gtid, "dumps by GTID: {context}");
    eprintln!("pipeline: {context}");
    assert!(runs >= 8 && kills >= 4, "{context}");
    assert!(
        stats.committed >= 100 && stats.key_changes >= 10 && stats.truncates >= 1,
        "{context}"
    );
    assert!(!target.activations.is_empty(), "{context}");
    assert_matches_source(&target, &db, &TABLES, &context);
}

/// What the writer did.
#[derive(Debug, Default)]
struct Stats {
    committed: u64,
    rolled_back: u64,
    key_changes: u64,
    truncates: u64,
    alters: u64,
    swaps: u64,
    failed: u64,
}

/// The random writer: its own connection, its own generator, counters for new keys.
struct Writer {
    conn: Conn,
    other: String,
    r: Lcg,
    next: u64,
    added: Vec<String>,
    stats: Stats,
}

impl Writer {
    fn new(db: &str, other: &str, seed: u64) -> Writer {
        Writer {
            conn: db_conn(db),
            other: other.to_string(),
            r: Lcg(seed),
            next: 1000,
            added: Vec::new(),
            stats: Stats::default(),
        }
    }

    fn run(mut self, stop: &AtomicBool) -> Stats {
        let started = Instant::now();
        for step in 0..WRITER_STEPS {
            if stop.load(Ordering::SeqCst) || started.elapsed() > WRITER_TIME {
                break;
            }
            if step == WRITER_STEPS / 2 {
                self.swap_c();
            }
            self.step();
            std::thread::sleep(Duration::from_millis(2 + self.r.below(6)));
        }
        self.stats
    }

    fn exec(&mut self, sql: &str) -> bool {
        let ok = self.conn.query_drop(sql).is_ok();
        if !ok {
            self.stats.failed += 1;
        }
        ok
    }

    fn fresh(&mut self) -> u64 {
        self.next += 1;
        self.next
    }

    /// One random change (a statement or a transaction).
    fn step(&mut self) {
        match self.r.below(100) {
            0..=59 => {
                let sql = self.change();
                if self.exec(&sql) {
                    self.stats.committed += 1;
                }
            }
            60..=71 => self.transaction(true),
            72..=77 => self.transaction(false),
            78..=83 => {
                let m = self.r.below(3);
                let sql =
                    format!("UPDATE a SET n = n + 1, v = CONCAT('bulk', id) WHERE id % 3 = {m}");
                self.exec(&sql);
            }
            84..=85 if self.added.len() < 3 => {
                let col = format!("x{}", self.added.len() + 1);
                if self.exec(&format!("ALTER TABLE a ADD COLUMN {col} int AFTER v")) {
                    self.added.push(col);
                    self.stats.alters += 1;
                }
            }
            86 => {
                if self.exec("TRUNCATE TABLE b") {
                    self.stats.truncates += 1;
                }
            }
            _ => {
                let sql = self.decoy_ddl();
                self.exec(&sql);
            }
        }
    }

    /// A multi-table transaction, committed or rolled back.
    fn transaction(&mut self, commit: bool) {
        self.exec("START TRANSACTION");
        for _ in 0..2 + self.r.below(4) {
            let sql = self.change();
            self.exec(&sql);
        }
        if commit {
            self.exec("COMMIT");
            self.stats.committed += 1;
        } else {
            self.exec("ROLLBACK");
            self.stats.rolled_back += 1;
        }
    }

    /// One row change on a random table.
    fn change(&mut self) -> String {
        let k = self.fresh();
        let pick = self.r.below(40);
        let n = self.r.below(1000);
        match self.r.below(16) {
            0 => format!("INSERT INTO a (id, v, n) VALUES ({k}, 'a{k}', {n})"),
            1 => format!(
                "INSERT INTO b (k1, k2, amount) VALUES ({}, 'k{k}', {n}.{})",
                pick % 7,
                n % 100
            ),
            2 => format!(
                "INSERT INTO c (code, n, ts) VALUES ('c{k}', {n}, '2025-02-03 04:05:06.{:03}')",
                n
            ),
            3 => format!("INSERT INTO u (x, y) VALUES ({k}, {n})"),
            4 => {
                let set = match self.added.last() {
                    Some(col) => format!("{col} = {n}, "),
                    None => String::new(),
                };
                format!("UPDATE a SET {set}v = 'u{n}', n = {n} WHERE id % 40 = {pick}")
            }
            5 => format!(
                "UPDATE b SET amount = {n}.5 WHERE k1 = {} ORDER BY k2 LIMIT 1",
                pick % 7
            ),
            6 => format!(
                "UPDATE c SET n = {n}, ts = NOW(3) ORDER BY code LIMIT {}",
                1 + pick % 3
            ),
            // key changes: single, composite, string, unique fallback
            7 => {
                self.stats.key_changes += 1;
                format!("UPDATE a SET id = {k} WHERE id % 40 = {pick} ORDER BY id LIMIT 1")
            }
            8 => {
                self.stats.key_changes += 1;
                format!(
                    "UPDATE b SET k2 = 'z{k}' WHERE k1 = {} ORDER BY k2 LIMIT 1",
                    pick % 7
                )
            }
            9 => {
                self.stats.key_changes += 1;
                format!(
                    "UPDATE b SET k1 = k1 + 7 WHERE k2 LIKE 'k%{}' LIMIT 1",
                    pick % 10
                )
            }
            10 => {
                self.stats.key_changes += 1;
                format!("UPDATE c SET code = 'r{k}' ORDER BY n DESC LIMIT 1")
            }
            11 => {
                self.stats.key_changes += 1;
                format!("UPDATE u SET x = {k} WHERE x % 40 = {pick} LIMIT 1")
            }
            12 => format!("DELETE FROM a WHERE id % 40 = {pick} ORDER BY id LIMIT 1"),
            13 => format!("DELETE FROM b WHERE k1 = {} ORDER BY k2 LIMIT 1", pick % 7),
            14 => format!("DELETE FROM c ORDER BY n LIMIT {}", 1 + pick % 2),
            _ => format!("DELETE FROM u WHERE x % 40 = {pick} LIMIT 1"),
        }
    }

    /// DDL on tables that are not selected but whose names contain a selected table's name,
    /// or a table of the same name in another database.
    fn decoy_ddl(&mut self) -> String {
        let other = self.other.clone();
        match self.r.below(7) {
            0 => "CREATE TABLE IF NOT EXISTS a_archive LIKE a".into(),
            1 => "DROP TABLE IF EXISTS a_archive".into(),
            2 => "CREATE TABLE IF NOT EXISTS b_log SELECT * FROM b".into(),
            3 => "RENAME TABLE b_log TO b_log_old".into(),
            4 => "DROP TABLE IF EXISTS b_log_old, b_log".into(),
            5 => format!("ALTER TABLE `{other}`.a ADD COLUMN IF NOT EXISTS z int FIRST"),
            _ => format!("TRUNCATE `{other}`.`a`"),
        }
    }

    /// A gh-ost cut-over of `c` to a table with its columns in another order.
    fn swap_c(&mut self) {
        let ok = self
            .exec("CREATE TABLE _c_gho (ts datetime(3), n int, code varchar(16) primary key)")
            && self.exec("INSERT INTO _c_gho (ts, n, code) SELECT ts, n, code FROM c")
            && self.exec("RENAME TABLE c TO _c_del, _c_gho TO c")
            && self.exec("DROP TABLE _c_del");
        if ok {
            self.stats.swaps += 1;
        }
    }
}
