//! LOG_BASED with `use_gtid`: the GTID is the position. Bookmarks whose file names are another
//! server's (a failover) resume at their GTID; streams at different GTID positions share one
//! read without duplicates; a bookmark without a GTID is refused (warned about without
//! `use_gtid`); and when `BINLOG_GTID_POS` gives NULL the snapshot still gets its GTID.

use mysql::prelude::Queryable;
use serde_json::{json, Value};
use tap_mysql::testing::MariadbGtidPos;

use crate::support::*;

/// (stream, id, v, deleted) of every RECORD, in output order.
fn changes(run: &Run) -> Vec<(String, i64, Value, bool)> {
    run.messages
        .iter()
        .filter(|m| m["type"] == "RECORD")
        .map(|m| {
            let r = &m["record"];
            (
                m["stream"].as_str().unwrap().to_string(),
                r["id"].as_i64().unwrap(),
                r["v"].clone(),
                r["_sdc_deleted_at"].is_string(),
            )
        })
        .collect()
}

fn change(stream: &str, id: i64, v: &str, deleted: bool) -> (String, i64, Value, bool) {
    (stream.to_string(), id, json!(v), deleted)
}

/// The state with a stream's bookmark moved to another server's file naming, GTID intact.
fn renamed(state: &Value, stream: &str, file: &str, pos: u64) -> Value {
    let mut s = state.clone();
    s["bookmarks"][stream]["log_file"] = json!(file);
    s["bookmarks"][stream]["log_pos"] = json!(pos);
    s
}

/// The server's current binlog file.
fn current_file() -> String {
    let row: mysql::Row = root_conn()
        .query_first("SHOW MASTER STATUS")
        .unwrap()
        .unwrap();
    row.get(0).unwrap()
}

/// The GTID position at `file`:`pos`, asked on a session whose max_allowed_packet lets
/// BINLOG_GTID_POS read past huge events (other tests write some).
fn gtid_at(file: &str, pos: u64) -> String {
    let mut big = {
        let _packet = set_global("max_allowed_packet", "1073741824");
        root_conn()
    };
    let g: Option<Option<String>> = big
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file, pos))
        .unwrap();
    g.flatten()
        .unwrap_or_else(|| panic!("no GTID at {file}:{pos}"))
}

/// A MariaDB GTID position in canonical form (the server lists domains in its own order).
fn canonical(gtid: &str) -> String {
    MariadbGtidPos::parse(gtid).unwrap().to_string()
}

/// The bookmark's GTID is the one of its own file and position on this server.
fn assert_consistent(b: &Value) {
    let (file, pos) = (
        b["log_file"].as_str().unwrap(),
        b["log_pos"].as_u64().unwrap(),
    );
    assert_eq!(
        b["gtid"].as_str().unwrap(),
        canonical(&gtid_at(file, pos)),
        "{b}"
    );
}

fn gtid_config(db: &str) -> Value {
    let mut cfg = config_for(db);
    cfg["use_gtid"] = json!(true);
    cfg
}

#[test]
fn a_bookmark_with_another_servers_file_names_resumes_at_its_gtid() {
    let _g = cdc_lock();
    let db = fresh_db("gtid_failover");
    let stream = format!("{db}-t");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE t (id int primary key, v varchar(20));
         INSERT INTO t VALUES (1, 'one'), (2, 'two')",
    )
    .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let cfg = gtid_config(&db);
    let s1 = sync(&cfg, Some(&catalog), None).last_state();
    c.query_drop(
        "INSERT INTO t VALUES (3, 'three'); UPDATE t SET v = 'ONE' WHERE id = 1; DELETE FROM t WHERE id = 2",
    )
    .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&s1));
    assert_eq!(
        changes(&run),
        vec![
            change(&stream, 3, "three", false),
            change(&stream, 1, "ONE", false),
            change(&stream, 2, "two", true),
        ]
    );
    let s2 = run.last_state();
    c.query_drop(
        "INSERT INTO t VALUES (4, 'four');
         START TRANSACTION; UPDATE t SET v = 'THREE' WHERE id = 3; INSERT INTO t VALUES (5, 'five'); COMMIT;
         DELETE FROM t WHERE id = 4",
    )
    .unwrap();
    let expected = vec![
        change(&stream, 4, "four", false),
        change(&stream, 3, "THREE", false),
        change(&stream, 5, "five", false),
        change(&stream, 4, "four", true),
    ];
    let real = current_file();
    assert!(real.starts_with("binlog."), "{real}");
    // Names that sort before and after this server's (`binlog.N`): none may matter.
    let mut last = None;
    for (file, pos) in [
        ("mariadb-bin.000001", 4),
        ("zz-bin.999999", 4),
        ("aaa-bin.000001", 999_999_999),
    ] {
        let run = sync(
            &cfg,
            Some(&catalog),
            Some(&renamed(&s2, &stream, file, pos)),
        );
        assert!(
            run.stderr.contains("starting from MariaDB GTID position"),
            "{}",
            run.stderr
        );
        assert_eq!(changes(&run), expected, "resumed from {file}:{pos}");
        let b = run.last_state()["bookmarks"][&stream].clone();
        assert_eq!(b["log_file"], json!(real), "{file}: {b}");
        assert_consistent(&b);
        last = Some(run.last_state());
    }
    // Without use_gtid the file name decides, as before: that bookmark is refused.
    let mut plain = cfg.clone();
    plain["use_gtid"] = json!(false);
    let run = sync_any(
        &plain,
        Some(&catalog),
        Some(&renamed(&s2, &stream, "zz-bin.999999", 4)),
    );
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr.contains("is ahead of the server's binary log"),
        "{}",
        run.stderr
    );
    // Nothing new for the stream: no record, and the bookmark takes this server's names.
    let s3 = last.unwrap();
    let run = sync(
        &cfg,
        Some(&catalog),
        Some(&renamed(&s3, &stream, "zz-bin.999999", 4)),
    );
    assert_eq!(changes(&run), vec![]);
    let b = run.last_state()["bookmarks"][&stream].clone();
    assert_eq!(b["log_file"], json!(current_file()), "{b}");
    assert_consistent(&b);
}

#[test]
fn streams_at_different_gtid_positions_resume_without_duplicates() {
    let _g = cdc_lock();
    let db = fresh_db("gtid_two_streams");
    let (a, b) = (format!("{db}-a"), format!("{db}-b"));
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE a (id int primary key, v varchar(20));
         CREATE TABLE b (id int primary key, v varchar(20))",
    )
    .unwrap();
    let both = log_based(&db, &["a", "b"], &[]);
    let only_a = log_based(&db, &["a"], &[]);
    let cfg = gtid_config(&db);
    let s1 = sync(&cfg, Some(&both), None).last_state();
    // Two replication domains: a's bookmark moves past transactions of both, b's stays behind
    // (without domain 1 at all when this is the first use of it).
    c.query_drop(
        "INSERT INTO a VALUES (1, 'a1');
         SET SESSION gtid_domain_id = 1;
         INSERT INTO a VALUES (2, 'a2');
         INSERT INTO b VALUES (2, 'b2');
         SET SESSION gtid_domain_id = 0",
    )
    .unwrap();
    let run = sync(&cfg, Some(&only_a), Some(&s1));
    assert_eq!(
        changes(&run),
        vec![change(&a, 1, "a1", false), change(&a, 2, "a2", false)]
    );
    let mut state = s1.clone();
    state["bookmarks"][&a] = run.last_state()["bookmarks"][&a].clone();
    assert_ne!(
        state["bookmarks"][&a]["gtid"],
        state["bookmarks"][&b]["gtid"]
    );
    c.query_drop(
        "INSERT INTO b VALUES (3, 'b3');
         SET SESSION gtid_domain_id = 1;
         INSERT INTO a VALUES (3, 'a3');
         SET SESSION gtid_domain_id = 0;
         START TRANSACTION; INSERT INTO a VALUES (4, 'a4'); INSERT INTO b VALUES (4, 'b4'); COMMIT",
    )
    .unwrap();
    // File names that, compared as positions, would skip everything for a and nothing for b.
    let state = renamed(&state, &a, "zz-bin.999999", 4);
    let state = renamed(&state, &b, "aaa-bin.000001", 4);
    let run = sync(&cfg, Some(&both), Some(&state));
    assert_eq!(
        changes(&run),
        vec![
            change(&b, 2, "b2", false),
            change(&b, 3, "b3", false),
            change(&a, 3, "a3", false),
            change(&a, 4, "a4", false),
            change(&b, 4, "b4", false),
        ]
    );
    let end = run.last_state();
    for s in [&a, &b] {
        assert_eq!(end["bookmarks"][s]["log_file"], json!(current_file()));
        assert_consistent(&end["bookmarks"][s]);
    }
    // Resuming from every STATE of that run sends exactly the rest (a transaction that touched
    // both streams moves both bookmarks in one STATE line).
    let all = changes(&run);
    for (i, m) in run.messages.iter().enumerate() {
        if m["type"] != "STATE" {
            continue;
        }
        let before = changes(&parse_run(
            run.lines[..i].join("\n").as_bytes(),
            String::new(),
            None,
        ));
        let after = changes(&sync(&cfg, Some(&both), Some(&m["value"])));
        assert_eq!([before, after].concat(), all, "resuming from line {i}");
    }
}

#[test]
fn a_bookmark_without_gtid_is_an_error_with_use_gtid_and_a_warning_without() {
    let _g = cdc_lock();
    let db = fresh_db("gtid_missing");
    let stream = format!("{db}-t");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE t (id int primary key, v varchar(20)); INSERT INTO t VALUES (1, 'one')",
    )
    .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let cfg = gtid_config(&db);
    let mut state = sync(&cfg, Some(&catalog), None).last_state();
    assert!(state["bookmarks"][&stream]["gtid"].is_string());
    state["bookmarks"][&stream]
        .as_object_mut()
        .unwrap()
        .remove("gtid");
    c.query_drop("INSERT INTO t VALUES (2, 'two')").unwrap();
    let run = sync_any(&cfg, Some(&catalog), Some(&state));
    assert_eq!(run.code, Some(2), "bad input: {}", run.stderr);
    for part in [
        &format!("stream '{stream}': the LOG_BASED bookmark has no gtid"),
        "remove its bookmark from the state",
        "SELECT BINLOG_GTID_POS('<log_file>', <log_pos>)",
        "use_gtid set to false",
    ] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    assert_eq!(changes(&run), vec![], "nothing is read");
    // Without use_gtid: a warning, and the run reads by file and position as before.
    let mut plain = cfg.clone();
    plain["use_gtid"] = json!(false);
    let run = sync(&plain, Some(&catalog), Some(&state));
    assert!(
        run.stderr.contains(&format!(
            "stream '{stream}': the LOG_BASED bookmark has no gtid although the server uses GTIDs"
        )),
        "{}",
        run.stderr
    );
    assert_eq!(changes(&run), vec![change(&stream, 2, "two", false)]);
    // A bookmark with its GTID brings no warning.
    let run = sync(&plain, Some(&catalog), Some(&run.last_state()));
    assert!(!run.stderr.contains("has no gtid"), "{}", run.stderr);
}

/// Rotates the binlog when dropped, so later tests do not snapshot in the file holding this
/// test's huge event.
struct HugeEventFile;

impl Drop for HugeEventFile {
    fn drop(&mut self) {
        let _ = root_conn().query_drop("FLUSH BINARY LOGS");
    }
}

#[test]
fn a_null_binlog_gtid_pos_falls_back_to_gtid_binlog_pos() {
    let _g = cdc_lock();
    let _rotate = HugeEventFile;
    let db = fresh_db("gtid_null_pos");
    let stream = format!("{db}-t");
    let mut c = db_conn(&db);
    // One row event of 18 MiB: larger than the sessions' max_allowed_packet (16 MiB), so
    // BINLOG_GTID_POS cannot read its way past it and gives NULL for any later position of
    // this binlog file.
    c.query_drop(
        "CREATE TABLE t (id int primary key, v varchar(20));
         CREATE TABLE big (id int primary key, x longblob, y longblob);
         INSERT INTO t VALUES (1, 'one');
         INSERT INTO big VALUES (1, REPEAT('x', 9437184), REPEAT('y', 9437184))",
    )
    .unwrap();
    let mut root = root_conn();
    let at: mysql::Row = root.query_first("SHOW MASTER STATUS").unwrap().unwrap();
    let (file, pos): (String, u64) = (at.get(0).unwrap(), at.get(1).unwrap());
    let direct: Option<Option<String>> = root
        .exec_first("SELECT BINLOG_GTID_POS(?, ?)", (file.as_str(), pos))
        .unwrap();
    assert_eq!(
        direct,
        Some(None),
        "the server gives NULL past the huge event"
    );
    let catalog = log_based(&db, &["t"], &[]);
    let mut cfg = gtid_config(&db);
    // The lock-free snapshot is the one that asks BINLOG_GTID_POS.
    cfg["snapshot_method"] = json!("lock_free");
    let run = sync(&cfg, Some(&catalog), None);
    assert_eq!(changes(&run), vec![change(&stream, 1, "one", false)]);
    for part in ["from @@gtid_binlog_pos", "BINLOG_GTID_POS: gave NULL for"] {
        assert!(run.stderr.contains(part), "{part}: {}", run.stderr);
    }
    let b = run.last_state()["bookmarks"][&stream].clone();
    assert_eq!(b["log_file"], json!(file), "{b}");
    assert!(b["log_pos"].as_u64().unwrap() >= pos, "{b}");
    // Exactly the GTID of the snapshot's position (asked where the huge event can be read).
    assert_consistent(&b);
    // And the server's @@gtid_binlog_pos at that moment, when nothing was logged since.
    let now: mysql::Row = root.query_first("SHOW MASTER STATUS").unwrap().unwrap();
    let current: String = root
        .query_first("SELECT @@GLOBAL.gtid_binlog_pos")
        .unwrap()
        .unwrap();
    if now.get::<u64, _>(1) == b["log_pos"].as_u64() {
        assert_eq!(b["gtid"], json!(canonical(&current)));
    }
    // The bookmark resumes by that GTID.
    c.query_drop("INSERT INTO t VALUES (2, 'two'); UPDATE t SET v = 'ONE' WHERE id = 1")
        .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&run.last_state()));
    assert_eq!(
        changes(&run),
        vec![
            change(&stream, 2, "two", false),
            change(&stream, 1, "ONE", false)
        ]
    );
}

/// A private server (stopped when dropped): RESET MASTER there touches no other test.
struct Private(Server);

impl Private {
    fn start() -> Private {
        Private(start_with(&[]).expect("a private server"))
    }

    fn root(&self) -> mysql::Conn {
        let opts = mysql::OptsBuilder::new()
            .socket(Some(self.0.socket.to_string_lossy().to_string()))
            .user(Some("root"));
        mysql::Conn::new(opts).expect("root connection to the private server")
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(self.0.dir.join("mysqld.pid")) {
            let _ = std::process::Command::new("kill").arg(pid.trim()).status();
        }
    }
}

#[test]
fn an_initial_load_on_a_server_without_gtids_resumes_by_gtid() {
    let server = Private::start();
    let mut root = server.root();
    root.query_drop(
        "CREATE DATABASE g;
         CREATE TABLE g.t (id int primary key, v varchar(20));
         INSERT INTO g.t VALUES (1, 'one');
         RESET MASTER",
    )
    .unwrap();
    let none: Option<String> = root.query_first("SELECT @@GLOBAL.gtid_binlog_pos").unwrap();
    assert_eq!(none.as_deref(), Some(""), "no GTID transaction yet");
    let mut cfg = base_config();
    cfg["port"] = json!(server.0.port);
    cfg["filter_dbs"] = json!("g");
    cfg["use_gtid"] = json!(true);
    let mut catalog = discover(&cfg);
    only_streams(&mut catalog, &["g-t"]);
    select_all(&mut catalog, &[("g-t", "LOG_BASED", None)]);
    let load = sync(&cfg, Some(&catalog), None);
    assert_eq!(changes(&load), vec![change("g-t", 1, "one", false)]);
    let state = load.last_state();
    // Known to be empty, which is not the same as unknown.
    assert_eq!(state["bookmarks"]["g-t"]["gtid"], json!(""), "{state}");
    root.query_drop("INSERT INTO g.t VALUES (2, 'two'); UPDATE g.t SET v = 'ONE' WHERE id = 1")
        .unwrap();
    let run = sync(&cfg, Some(&catalog), Some(&state));
    assert!(
        run.stderr
            .contains("starting from MariaDB GTID position \n")
            || run
                .stderr
                .contains("starting from MariaDB GTID position \""),
        "from the empty position: {}",
        run.stderr
    );
    assert_eq!(
        changes(&run),
        vec![
            change("g-t", 2, "two", false),
            change("g-t", 1, "ONE", false)
        ]
    );
    let gtid: Option<String> = root.query_first("SELECT @@GLOBAL.gtid_binlog_pos").unwrap();
    assert_eq!(
        run.last_state()["bookmarks"]["g-t"]["gtid"],
        json!(gtid.unwrap())
    );
}
