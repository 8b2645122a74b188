//! The grants the README documents are enough: a user with exactly those runs every method.

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

#[test]
fn documented_least_privileges_run_every_method() {
    // LOG_BASED reads the shared binlog, which CDC tests change (metadata, purges).
    let _g = cdc_lock();
    let db = fresh_db("least_priv");
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE full_t (id int primary key, v varchar(10));
         CREATE TABLE incr_t (id int primary key, ts datetime(6) not null);
         CREATE TABLE cdc_t (id int primary key, v varchar(10));
         INSERT INTO full_t VALUES (1, 'a'), (2, 'b');
         INSERT INTO incr_t VALUES (1, '2024-01-01'), (2, '2024-01-02');
         INSERT INTO cdc_t VALUES (1, 'x');",
    )
    .unwrap();
    // README "Privileges": SELECT on the data; for LOG_BASED also REPLICATION SLAVE and
    // BINLOG MONITOR (REPLICATION CLIENT on MySQL); nothing else.
    create_user(
        "least",
        "pw-least",
        &[
            &format!("SELECT ON `{db}`.*"),
            "REPLICATION SLAVE, BINLOG MONITOR ON *.*",
        ],
    );
    let mut cfg = config_for(&db);
    cfg["user"] = json!("least");
    cfg["password"] = json!("pw-least");
    let mut catalog = discover(&cfg);
    let ids: Vec<String> = ["full_t", "incr_t", "cdc_t"]
        .iter()
        .map(|t| format!("{db}-{t}"))
        .collect();
    select_all(
        &mut catalog,
        &[
            (&ids[0], "FULL_TABLE", None),
            (&ids[1], "INCREMENTAL", Some("ts")),
            (&ids[2], "LOG_BASED", None),
        ],
    );
    let first = sync(&cfg, Some(&catalog), None);
    for id in &ids {
        assert!(!first.records(id).is_empty(), "{id}");
    }
    // Without RELOAD or LOCK TABLES the parallel snapshot uses MariaDB's lock-free method.
    assert!(
        first.stderr.contains("lock-free") || first.stderr.contains("one connection"),
        "{}",
        first.stderr
    );
    c.query_drop("INSERT INTO cdc_t VALUES (2, 'y'); INSERT INTO incr_t VALUES (3, '2024-01-03')")
        .unwrap();
    let second = sync(&cfg, Some(&catalog), Some(&first.last_state()));
    let cdc: Vec<&Value> = second.records(&ids[2]);
    assert_eq!(cdc.len(), 1);
    assert_eq!(cdc[0]["id"], 2);
    assert!(second.records(&ids[1]).iter().any(|r| r["id"] == 3));
}
