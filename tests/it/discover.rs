//! Discovery against the private server.

use std::time::Instant;

use mysql::prelude::Queryable;
use serde_json::json;

use crate::support::*;

fn stream<'a>(catalog: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["tap_stream_id"] == id)
        .unwrap_or_else(|| panic!("stream {id} not in catalog"))
}

fn stream_md(s: &serde_json::Value) -> &serde_json::Value {
    &s["metadata"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["breadcrumb"] == json!([]))
        .unwrap()["metadata"]
}

#[test]
fn fixture_catalog_snapshot() {
    let db = named_db("tap_fixture");
    load_fixture(&db, "types.sql");
    let cfg = config_for(&db);
    let catalog = discover(&cfg);
    // row-count is an optimizer estimate: checked here, redacted in the snapshot.
    for s in catalog["streams"].as_array().unwrap() {
        let md = stream_md(s);
        if md["is-view"] == json!(false) {
            assert!(md["row-count"].is_u64(), "{md}");
        } else {
            assert!(md.get("row-count").is_none());
        }
    }
    insta::assert_json_snapshot!("fixture_catalog", catalog, {
        ".streams[].metadata[].metadata[\"row-count\"]" => "[estimate]",
    });
}

#[test]
fn meltano_style_discover_ignores_state_and_catalog() {
    let db = fresh_db("meltano_disc");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key)")
        .unwrap();
    let cfg = config_for(&db);
    let cfg_file = json_file(&cfg);
    let state = json_file(&json!({"bookmarks": {}}));
    let catalog = json_file(&json!({"streams": []}));
    let out = run_tap(
        &[
            "--config",
            cfg_file.path().to_str().unwrap(),
            "--state",
            state.path().to_str().unwrap(),
            "--catalog",
            catalog.path().to_str().unwrap(),
            "--discover",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let c: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["streams"][0]["tap_stream_id"], format!("{db}-t"));
}

#[test]
fn keys_views_and_filters() {
    let a = fresh_db("keys_a");
    let b = fresh_db("keys_b");
    let mut ca = db_conn(&a);
    ca.query_drop(
        "CREATE TABLE pk2 (b int not null, a varchar(10) not null, v int, PRIMARY KEY (b, a));
         CREATE TABLE uq (x int, email varchar(50) not null, n int, code varchar(100) not null,
            UNIQUE KEY z_email (email), UNIQUE KEY a_nullable (x), UNIQUE KEY b_prefix (code(10)));
         CREATE TABLE uq2 (p int not null, q int not null, r int not null,
            UNIQUE KEY k_pq (p, q), UNIQUE KEY k_r (r));
         CREATE TABLE nokey (a int, b text);
         CREATE VIEW v AS SELECT b, a FROM pk2;
         CREATE VIEW v_text AS SELECT CONCAT('x', a) AS s FROM pk2;",
    )
    .unwrap();
    db_conn(&b)
        .query_drop("CREATE TABLE other (id bigint unsigned primary key)")
        .unwrap();

    let mut cfg = base_config();
    cfg["filter_dbs"] = json!(format!("{a}, {b}"));
    let catalog = discover(&cfg);
    let ids: Vec<&str> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["tap_stream_id"].as_str().unwrap())
        .collect();
    let expected: Vec<String> = ["nokey", "pk2", "uq", "uq2", "v", "v_text"]
        .iter()
        .map(|t| format!("{a}-{t}"))
        .chain([format!("{b}-other")])
        .collect();
    assert_eq!(ids, expected);

    let pk2 = stream(&catalog, &format!("{a}-pk2"));
    assert_eq!(stream_md(pk2)["table-key-properties"], json!(["b", "a"]));
    // The NOT NULL, non-prefix unique key; the nullable and prefix ones are ignored.
    assert_eq!(
        stream_md(stream(&catalog, &format!("{a}-uq")))["table-key-properties"],
        json!(["email"])
    );
    // Fewest columns wins.
    assert_eq!(
        stream_md(stream(&catalog, &format!("{a}-uq2")))["table-key-properties"],
        json!(["r"])
    );
    assert_eq!(
        stream_md(stream(&catalog, &format!("{a}-nokey")))["table-key-properties"],
        json!([])
    );
    let v = stream_md(stream(&catalog, &format!("{a}-v")));
    assert_eq!(v["is-view"], true);
    assert_eq!(v["table-key-properties"], json!([]));
    assert!(v.get("forced-replication-method").is_none());
    let vt = stream_md(stream(&catalog, &format!("{a}-v_text")));
    // CONCAT of varchar(10) is still a varchar: a valid replication key, so nothing is forced.
    assert_eq!(vt["valid-replication-keys"], json!(["s"]));

    // database alone scopes discovery when filter_dbs is absent.
    let mut cfg = base_config();
    cfg["database"] = json!(b);
    let catalog = discover(&cfg);
    assert_eq!(catalog["streams"].as_array().unwrap().len(), 1);
}

#[test]
fn view_without_replication_key_is_forced_full_table() {
    let db = fresh_db("forced");
    db_conn(&db)
        .query_drop(
            "CREATE TABLE t (id int primary key, body text); CREATE VIEW v AS SELECT body FROM t",
        )
        .unwrap();
    let cfg = config_for(&db);
    let catalog = discover(&cfg);
    let md = stream_md(stream(&catalog, &format!("{db}-v")));
    assert_eq!(md["forced-replication-method"], "FULL_TABLE");
    assert_eq!(md["valid-replication-keys"], json!([]));
}

#[test]
fn type_options_change_the_schema() {
    let db = fresh_db("typeopts");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key, flag tinyint(1) not null, amount decimal(12,2), doc json)")
        .unwrap();
    let mut cfg = config_for(&db);
    cfg["tinyint1_as_boolean"] = json!(false);
    cfg["decimal_as_string"] = json!("true");
    cfg["json_as_string"] = json!(true);
    let catalog = discover(&cfg);
    let props = &stream(&catalog, &format!("{db}-t"))["schema"]["properties"];
    assert_eq!(
        props["flag"],
        json!({"type": ["integer"], "minimum": -128, "maximum": 127})
    );
    assert_eq!(
        props["amount"],
        json!({"type": ["null", "string"], "format": "x-singer.decimal", "precision": 12, "scale": 2})
    );
    assert_eq!(props["doc"], json!({"type": ["null", "string"]}));
}

/// 2,000 tables x 20 columns: discovery must take seconds, not minutes. Reports the time.
#[test]
fn discovery_of_2000_tables() {
    let db = fresh_db("many");
    let mut c = db_conn(&db);
    let cols: Vec<String> = (1..20)
        .map(|i| {
            let ty = ["int", "varchar(64)", "decimal(10,2)", "datetime(6)", "json"][i % 5];
            format!("c{i} {ty}")
        })
        .collect();
    let build = Instant::now();
    for chunk in (0..2000).collect::<Vec<_>>().chunks(100) {
        let sql: String = chunk
            .iter()
            .map(|i| {
                format!(
                    "CREATE TABLE t{i:04} (id bigint primary key, {});",
                    cols.join(", ")
                )
            })
            .collect();
        c.query_drop(sql).unwrap();
    }
    let built = build.elapsed();
    let cfg = config_for(&db);
    let started = Instant::now();
    let catalog = discover(&cfg);
    let took = started.elapsed();
    let streams = catalog["streams"].as_array().unwrap();
    assert_eq!(streams.len(), 2000);
    for s in streams {
        assert_eq!(s["schema"]["properties"].as_object().unwrap().len(), 20);
        assert_eq!(stream_md(s)["table-key-properties"], json!(["id"]));
    }
    println!(
        "discovery of 2000 tables x 20 columns: {:.2} s (creating them took {:.1} s)",
        took.as_secs_f64(),
        built.as_secs_f64()
    );
    eprintln!(
        "discovery of 2000 tables x 20 columns: {:.2} s",
        took.as_secs_f64()
    );
    c.query_drop(format!("DROP DATABASE `{db}`")).unwrap();
}
