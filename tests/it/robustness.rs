//! Hostile bytes never panic the decoders and parsers: a bounded randomized run (deterministic
//! seeds, so a failure reproduces) over binlog event bodies, WKB, DDL text, GTID text, state and
//! config documents.

use tap_mysql::testing::{
    apply_ddl, ddl_changes, geojson_from_internal, mariadb_gtid_event, DdlChange, MariadbGtidPos,
    MysqlGtidSet,
};

use crate::support::Lcg;

#[test]
fn binlog_decoders_never_panic_on_random_bytes() {
    let mut r = Lcg(7);
    for _ in 0..20_000 {
        let b = r.bytes(64);
        let _ = mariadb_gtid_event(&b, 1);
        let _ = geojson_from_internal(&b);
    }
    // Structured but corrupt WKB: valid headers with random counts and coordinates.
    for _ in 0..20_000 {
        let mut b = vec![0, 0, 0, 0, 1];
        b.extend(((r.next() % 8) as u32).to_le_bytes());
        b.extend(r.bytes(80));
        let _ = geojson_from_internal(&b);
    }
}

#[test]
fn text_parsers_never_panic_on_random_text() {
    let mut r = Lcg(11);
    let ddl_words = [
        "ALTER ", "TABLE ", "t ", "`t` ", "ADD ", "DROP ", "COLUMN ", "MODIFY ", "CHANGE ",
        "RENAME ", "TO ", "AFTER ", "FIRST ", "IF ", "EXISTS ", "NOT ", "(", ")", ",", "'", "`",
        "a ", "b ", "int ", ".", "/*!", "*/",
    ];
    let gtid_bits = [
        "0",
        "1",
        "-",
        ":",
        ",",
        "3e11fa47-71ca-11e1-9e33-c80aa9429562",
        "tag",
        " ",
        "\n",
        "99999999999999999999",
    ];
    for _ in 0..20_000 {
        let mut model = vec!["id".to_string(), "a".to_string(), "b".to_string()];
        let tail = r.text(&ddl_words, 16);
        let sql = if r.next().is_multiple_of(2) {
            format!("ALTER TABLE t {tail}")
        } else {
            tail
        };
        for (_, change) in ddl_changes(&sql, "db") {
            if let DdlChange::Altered(clauses) = change {
                let _ = apply_ddl(&mut model, &clauses);
            }
        }
        let g = r.text(&gtid_bits, 12);
        let _ = MysqlGtidSet::parse(&g);
        let _ = MariadbGtidPos::parse(&g);
    }
}

#[test]
fn state_and_config_documents_never_panic() {
    let mut r = Lcg(13);
    let json_bits = [
        "{",
        "}",
        "[",
        "]",
        ":",
        ",",
        "\"bookmarks\"",
        "\"a\"",
        "\"value\"",
        "\"currently_syncing\"",
        "1",
        "-1",
        "1e999",
        "null",
        "true",
        "\"port\"",
        "\"user\"",
        "\"ssl\"",
        "\"batch_config\"",
        "\"x\"",
        "18446744073709551616",
    ];
    for _ in 0..20_000 {
        let text = r.text(&json_bits, 14);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
            let _ = tap_mysql::testing::State::from_value(v.clone());
            if let serde_json::Value::Object(m) = v {
                let _ = tap_mysql::testing::Config::from_map(m);
            }
        }
    }
}
