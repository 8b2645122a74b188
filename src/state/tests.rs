//! The JSON shape of bookmarks (round trips, unknown keys, malformed input) and every
//! transition.

use serde_json::{json, Map, Value};

use super::binlog::BinlogBookmark;
use super::bookmark::Bookmark;
use super::full_table::FullTableBookmark;
use super::incremental::IncrementalBookmark;
use super::*;
use crate::error::Error;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn bm(v: Value) -> Bookmark {
    Bookmark::from_map(obj(v)).unwrap()
}

/// The bookmark as the text the STATE line carries.
fn text(b: &Bookmark) -> String {
    serde_json::to_string(&b.to_map()).unwrap()
}

fn keys(m: &[(&str, Value)]) -> KeyValues {
    m.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn start() -> BinlogStart {
    BinlogStart::new(
        "bin.000002".into(),
        120,
        Some("0-1-5".into()),
        vec!["id".into(), "v".into()],
    )
}

// The JSON shape.

#[test]
fn known_keys_are_every_part_s_keys() {
    let mut parts: Vec<&str> = FullTableBookmark::KEYS
        .iter()
        .chain(&IncrementalBookmark::KEYS)
        .chain(&BinlogBookmark::KEYS)
        .copied()
        .collect();
    parts.sort();
    // Through the order of new keys: a bookmark with every key set has all 13 of them.
    let all = json!({
        "dropped": true, "resnapshot": "x", "replication_key_value": 1, "replication_key": "k",
        "initial_full_table_complete": true, "chunks": [], "last_pk_fetched": {},
        "max_pk_values": {}, "version": 1, "columns": [], "gtid": "", "log_pos": 4,
        "log_file": "f"
    });
    let b = bm(all.clone());
    let mut written: Vec<String> = b.to_map().keys().cloned().collect();
    written.sort();
    assert_eq!(written, parts);
    assert_eq!(Value::Object(b.to_map()), all);
}

#[test]
fn round_trips_unchanged_with_unknown_keys_in_place() {
    let docs = [
        r#"{}"#,
        r#"{"version":1700000000000,"initial_full_table_complete":true}"#,
        r#"{"zz_other_tool":{"a":[1,2]},"version":5,"max_pk_values":{"id":9,"name":"é"},"last_pk_fetched":{"id":3,"name":null},"x":null}"#,
        r#"{"version":5,"max_pk_values":{"id":9},"chunks":[{"lo":null,"hi":4},{"lo":4,"hi":null,"last_pk_fetched":{"id":6}},{"lo":null,"hi":null,"done":true}]}"#,
        r#"{"replication_key":"updated_at","replication_key_value":"2024-01-01T00:00:00+00:00","future":1}"#,
        r#"{"replication_key":"k","replication_key_value":null}"#,
        r#"{"log_pos":4,"future_flag":false,"log_file":"mysql-bin.000001","gtid":"","columns":["id","v"],"version":1,"initial_full_table_complete":true,"dropped":true}"#,
        r#"{"initial_full_table_complete":true,"version":3,"resnapshot":"its table was dropped","dropped":false}"#,
        r#"{"log_file":"only-a-file"}"#,
    ];
    for doc in docs {
        let b = bm(serde_json::from_str(doc).unwrap());
        assert_eq!(text(&b), doc);
        assert_eq!(Bookmark::from_map(b.to_map()).unwrap(), b, "{doc}");
    }
}

#[test]
fn nulls_of_known_keys_are_absent() {
    let b = bm(json!({"version": null, "log_file": null, "max_pk_values": null}));
    assert_eq!(b.version(), None);
    assert!(!b.full_table().in_progress());
    assert!(b.is_empty());
    assert_eq!(text(&b), "{}");
    // A chunk's open bounds.
    let b = bm(json!({"chunks": [{"lo": null, "hi": 7}]}));
    let c = &b.full_table().chunks().unwrap()[0];
    assert_eq!((c.lo(), c.hi(), c.done()), (None, Some(&json!(7)), false));
}

#[test]
fn malformed_bookmarks_name_the_key() {
    let cases = [
        (
            json!({"version": "x"}),
            "'version' must be a non-negative integer",
        ),
        (
            json!({"version": -1}),
            "'version' must be a non-negative integer",
        ),
        (
            json!({"version": 1.5}),
            "'version' must be a non-negative integer",
        ),
        (
            json!({"log_pos": "4"}),
            "'log_pos' must be a non-negative integer",
        ),
        (json!({"log_file": 3}), "'log_file' must be a string"),
        (json!({"gtid": ["a"]}), "'gtid' must be a string"),
        (json!({"columns": "id"}), "'columns' must be an array"),
        (
            json!({"columns": ["id", 2]}),
            "'columns' must be an array of strings",
        ),
        (json!({"dropped": "yes"}), "'dropped' must be true or false"),
        (json!({"resnapshot": true}), "'resnapshot' must be a string"),
        (
            json!({"initial_full_table_complete": 1}),
            "'initial_full_table_complete' must be true or false",
        ),
        (
            json!({"max_pk_values": [1]}),
            "'max_pk_values' must be an object",
        ),
        (
            json!({"last_pk_fetched": 5}),
            "'last_pk_fetched' must be an object",
        ),
        (json!({"chunks": {}}), "'chunks' must be an array"),
        (
            json!({"chunks": [1]}),
            "'chunks' must be an array of objects",
        ),
        (
            json!({"chunks": [{"done": "no"}]}),
            "in 'chunks': bookmark key 'done'",
        ),
        (
            json!({"chunks": [{"last_pk_fetched": 1}]}),
            "in 'chunks': bookmark key 'last_pk_fetched'",
        ),
        (
            json!({"replication_key": 7}),
            "'replication_key' must be a string",
        ),
    ];
    for (doc, want) in cases {
        let err = Bookmark::from_map(obj(doc.clone())).unwrap_err();
        assert!(err.contains(want), "{doc}: {err}");
    }
    // Long values are shortened.
    let err = Bookmark::from_map(obj(json!({"version": "x".repeat(500)}))).unwrap_err();
    assert!(err.len() < 150, "{err}");
}

#[test]
fn a_malformed_bookmark_is_a_usage_error_naming_the_stream() {
    let s = State::from_value(json!({"bookmarks": {
        "db-bad": {"version": "soon"},
        "db-good": {"version": 1}
    }}))
    .unwrap();
    match s.bookmark("db-bad") {
        Err(Error::Usage(msg)) => {
            assert!(msg.contains("stream 'db-bad'"), "{msg}");
            assert!(msg.contains("'version'"), "{msg}");
            assert!(msg.contains("remove it from the state"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.bookmark("db-good").unwrap().version(), Some(1));
    assert!(s.bookmark("db-none").unwrap().is_empty());
}

// The state document.

#[test]
fn keeps_other_streams_and_unwraps() {
    let mut s = State::from_value(json!({"value": {"bookmarks": {"a": {"x": 1}}}})).unwrap();
    s.set_bookmark("b", &Bookmark::default());
    s.set_currently_syncing(Some("b"));
    assert_eq!(
        s.as_value(),
        json!({"bookmarks": {"a": {"x": 1}, "b": {}}, "currently_syncing": "b"})
    );
    assert!(State::from_value(json!([1])).is_err());
    assert!(State::from_value(json!({"bookmarks": {"a": 1}})).is_err());
    assert!(State::from_value(json!({"bookmarks": [1]})).is_err());
    assert!(State::from_value(json!({}))
        .unwrap()
        .bookmark("x")
        .unwrap()
        .is_empty());
    assert_eq!(s.currently_syncing(), Some("b"));
}

#[test]
fn untouched_bookmarks_stay_byte_for_byte() {
    let doc = r#"{"bookmarks":{"other":{"b":1,"version":"not ours to check","a":2}},"extra":true}"#;
    let mut s = State::from_value(serde_json::from_str(doc).unwrap()).unwrap();
    assert_eq!(
        s.message(),
        format!("{{\"type\":\"STATE\",\"value\":{doc}}}\n").into_bytes()
    );
    s.set_bookmark("mine", &bm(json!({"version": 2})));
    s.set_currently_syncing(None);
    assert_eq!(
        String::from_utf8(s.message()).unwrap(),
        r#"{"type":"STATE","value":{"bookmarks":{"other":{"b":1,"version":"not ours to check","a":2},"mine":{"version":2}},"extra":true,"currently_syncing":null}}"#.to_string() + "\n"
    );
}

#[test]
fn chunk_updates_through_the_document() {
    let mut s = State::default();
    let mut b = bm(json!({})).full_load(7, Some(&keys(&[("id", json!(100))])), None);
    b.set_chunks(vec![
        ChunkProgress::new(None, Some(json!(50)), false, None),
        ChunkProgress::new(Some(json!(50)), None, false, None),
    ]);
    s.set_bookmark("t", &b);
    s.update_chunk("t", 1, Some(keys(&[("id", json!(60))])), false);
    s.update_chunk("t", 0, None, true);
    s.update_chunk("t", 9, None, true); // no such chunk
    s.update_chunk("nope", 0, None, true); // no such stream
    assert_eq!(
        s.as_value()["bookmarks"]["t"],
        json!({"version": 7, "max_pk_values": {"id": 100}, "chunks": [
            {"lo": null, "hi": 50, "done": true},
            {"lo": 50, "hi": null, "last_pk_fetched": {"id": 60}}
        ]})
    );
    assert_eq!(
        serde_json::to_string(&s.as_value()["bookmarks"]["t"]["chunks"]).unwrap(),
        r#"[{"lo":null,"hi":50,"done":true},{"lo":50,"hi":null,"last_pk_fetched":{"id":60}}]"#
    );
}

// Full table loads.

#[test]
fn versions_always_grow() {
    assert_eq!(next_version(None, 1000), 1000);
    assert_eq!(next_version(Some(5), 1000), 1000);
    assert_eq!(next_version(Some(5000), 1000), 5001);
    assert_eq!(next_version(Some(u64::MAX), 1000), u64::MAX);
}

#[test]
fn a_load_resumes_with_its_version_else_takes_a_new_one() {
    let fresh = bm(json!({}));
    assert_eq!(fresh.full_table().load_version(1000, 0), 1000);
    assert!(!fresh.full_table().initial_load_complete());
    let done = bm(json!({"version": 2000, "initial_full_table_complete": true}));
    assert_eq!(done.full_table().load_version(1000, 0), 2001);
    assert!(done.full_table().initial_load_complete());
    assert!(!done.full_table().in_progress());
    let resumed = bm(json!({"version": 2000, "max_pk_values": {"id": 3}}));
    assert!(resumed.full_table().in_progress());
    assert_eq!(resumed.full_table().load_version(9000, 0), 2000);
    let resumed = bm(json!({"version": 2000, "last_pk_fetched": {"id": 3}}));
    assert_eq!(resumed.full_table().load_version(9000, 0), 2000);
    assert_eq!(
        resumed.full_table().load_version(9000, 10_000),
        2000,
        "a load under way keeps its version whatever the pass"
    );
    assert_eq!(done.full_table().load_version(1000, 7000), 7000);
    // Chunks alone are a load under way for the LOG_BASED decision, not a resumable one.
    let chunks = bm(json!({"version": 2000, "chunks": []}));
    assert!(chunks.full_table().started() && !chunks.full_table().in_progress());
}

#[test]
fn start_of_a_full_load() {
    // As the first STATE of a first FULL_TABLE sync.
    let b = bm(json!({})).full_load(7, Some(&keys(&[("id", json!(3))])), None);
    assert_eq!(text(&b), r#"{"version":7,"max_pk_values":{"id":3}}"#);
    // No key, or an empty table: `{}`.
    assert_eq!(
        text(&bm(json!({})).full_load(7, None, None)),
        r#"{"version":7,"max_pk_values":{}}"#
    );
    // A later sync: completion, resnapshot, dropped, INCREMENTAL keys go; unknown keys stay.
    let old = bm(json!({
        "version": 6, "initial_full_table_complete": true, "resnapshot": "why", "dropped": true,
        "replication_key": "k", "replication_key_value": 1, "other": "kept",
        "log_file": "stale", "log_pos": 1
    }));
    assert_eq!(
        text(&old.full_load(7, None, None)),
        r#"{"version":7,"other":"kept","max_pk_values":{}}"#
    );
    // LOG_BASED: the binlog start goes first.
    let b = bm(json!({})).full_load(7, None, Some(&start()));
    assert_eq!(
        text(&b),
        r#"{"log_file":"bin.000002","log_pos":120,"gtid":"0-1-5","columns":["id","v"],"version":7,"max_pk_values":{}}"#
    );
}

#[test]
fn progress_of_an_unchunked_load() {
    let mut b = bm(json!({})).full_load(7, Some(&keys(&[("id", json!(9))])), None);
    b.fetched_up_to(keys(&[("id", json!(4))]));
    assert_eq!(
        text(&b),
        r#"{"version":7,"max_pk_values":{"id":9},"last_pk_fetched":{"id":4}}"#
    );
    b.fetched_up_to(keys(&[("id", json!(5))]));
    assert_eq!(
        b.full_table().last_pk_fetched(),
        Some(&keys(&[("id", json!(5))]))
    );
}

#[test]
fn progress_of_a_chunked_load() {
    let mut b = bm(json!({})).full_load(7, Some(&keys(&[("id", json!(9))])), None);
    b.set_chunks(vec![
        ChunkProgress::new(None, Some(json!(5)), false, Some(keys(&[("id", json!(2))]))),
        ChunkProgress::new(Some(json!(5)), None, true, Some(keys(&[("id", json!(9))]))),
    ]);
    let chunks = b.full_table().chunks().unwrap();
    assert_eq!(
        chunks[0].last_pk_fetched(),
        Some(&keys(&[("id", json!(2))]))
    );
    assert!(chunks[1].done() && chunks[1].last_pk_fetched().is_none());
    b.update_chunk(0, Some(keys(&[("id", json!(3))])), false);
    assert_eq!(
        b.full_table().chunks().unwrap()[0].last_pk_fetched(),
        Some(&keys(&[("id", json!(3))]))
    );
    b.update_chunk(0, None, false); // nothing to record
    b.update_chunk(0, None, true);
    assert_eq!(
        text(&b),
        r#"{"version":7,"max_pk_values":{"id":9},"chunks":[{"lo":null,"hi":5,"done":true},{"lo":5,"hi":null,"done":true}]}"#
    );
    let before = b.clone();
    b.update_chunk(2, None, true);
    assert_eq!(b, before);
}

#[test]
fn load_complete() {
    // FULL_TABLE: as the last STATE of a sync.
    let done = bm(json!({})).load_complete(7, None);
    assert_eq!(
        text(&done),
        r#"{"version":7,"initial_full_table_complete":true}"#
    );
    // From an interrupted resnapshot: progress, resnapshot and dropped go, other keys stay.
    let old = bm(json!({
        "other": 1, "version": 3, "max_pk_values": {"id": 2}, "last_pk_fetched": {"id": 1},
        "chunks": [], "resnapshot": "why", "dropped": true, "replication_key": "k"
    }));
    assert_eq!(
        Value::Object(old.load_complete(7, None).to_map()),
        json!({"other": 1, "version": 7, "replication_key": "k", "initial_full_table_complete": true})
    );
    // LOG_BASED: the binlog position to continue from.
    let done = bm(json!({})).load_complete(7, Some(&start()));
    assert_eq!(
        text(&done),
        r#"{"log_file":"bin.000002","log_pos":120,"gtid":"0-1-5","columns":["id","v"],"version":7,"initial_full_table_complete":true}"#
    );
    assert!(!done.needs_initial_load());
    assert_eq!(done.binlog().position(), Some(("bin.000002", 120)));
    // A start without a GTID keeps the bookmark's.
    let no_gtid = BinlogStart::new("f".into(), 4, None, vec![]);
    let done = bm(json!({"gtid": "0-1-1"})).load_complete(7, Some(&no_gtid));
    assert_eq!(done.binlog().gtid(), Some("0-1-1"));
}

#[test]
fn initial_load_decision_and_binlog_start() {
    assert!(bm(json!({})).needs_initial_load());
    assert!(bm(json!({"log_file": "f"})).needs_initial_load());
    let pos = json!({"log_file": "f", "log_pos": 4, "version": 1});
    assert!(!bm(pos.clone()).needs_initial_load());
    let mut loading = obj(pos);
    loading.insert("max_pk_values".into(), json!({}));
    let loading = Bookmark::from_map(loading).unwrap();
    assert!(loading.needs_initial_load());
    // An interrupted load continues from its own binlog start.
    let s = loading.binlog_start().unwrap();
    assert_eq!(
        text(&bm(json!({})).full_load(1, None, Some(&s))),
        r#"{"log_file":"f","log_pos":4,"version":1,"max_pk_values":{}}"#
    );
    assert_eq!(bm(json!({"log_file": "f"})).binlog_start(), None);
}

// INCREMENTAL.

#[test]
fn incremental_start_and_advance() {
    let mut b = bm(json!({}));
    assert!(!b.start_incremental("updated_at"));
    assert_eq!(text(&b), r#"{"replication_key":"updated_at"}"#);
    assert_eq!(b.incremental().replication_key_value(), None);
    b.advance_replication_key(json!("2025-01-01T00:00:00.000001+00:00"));
    assert_eq!(
        text(&b),
        r#"{"replication_key":"updated_at","replication_key_value":"2025-01-01T00:00:00.000001+00:00"}"#
    );
    // Same key: resume.
    assert!(!b.start_incremental("updated_at"));
    assert!(b.incremental().replication_key_value().is_some());
    // Another key: from the beginning.
    assert!(b.start_incremental("seq"));
    assert_eq!(text(&b), r#"{"replication_key":"seq"}"#);
    // A FULL_TABLE load's keys do not linger; the version and unknown keys stay.
    let mut b = bm(json!({"version": 1, "max_pk_values": {}, "last_pk_fetched": {}, "u": 0}));
    b.start_incremental("k");
    assert_eq!(text(&b), r#"{"version":1,"u":0,"replication_key":"k"}"#);
    // A null value is no value.
    let b = bm(json!({"replication_key": "k", "replication_key_value": null}));
    assert_eq!(b.incremental().replication_key_value(), None);
}

// LOG_BASED.

fn cdc_bookmark() -> Bookmark {
    bm(json!({
        "log_file": "bin.000001", "log_pos": 100, "gtid": "0-1-3", "columns": ["id"],
        "version": 7, "initial_full_table_complete": true, "future": "x"
    }))
}

fn at(version: Option<u64>, dropped: bool, gtid: Option<&str>) -> BinlogAt<'static> {
    BinlogAt {
        file: "bin.000002",
        pos: 200,
        gtid: gtid.map(str::to_string),
        columns: Some(vec!["id".into(), "v".into()]),
        version,
        dropped,
    }
}

#[test]
fn position_advance() {
    let b = cdc_bookmark().advanced(at(None, false, Some("0-1-9")));
    assert_eq!(
        text(&b),
        r#"{"log_file":"bin.000002","log_pos":200,"gtid":"0-1-9","columns":["id","v"],"version":7,"initial_full_table_complete":true,"future":"x"}"#
    );
    // No GTID known: the bookmark keeps its own. Columns that could not be followed go.
    let mut no_cols = at(None, false, None);
    no_cols.columns = None;
    let b = cdc_bookmark().advanced(no_cols);
    assert_eq!(b.binlog().gtid(), Some("0-1-3"));
    assert_eq!(b.binlog().columns(), None);
    assert_eq!(b.binlog().position(), Some(("bin.000002", 200)));
}

#[test]
fn truncate_or_drop_gives_a_new_version() {
    let b = cdc_bookmark().advanced(at(Some(8), false, None));
    assert_eq!(b.version(), Some(8));
    assert!(!b.binlog().is_dropped());
    let dropped = cdc_bookmark().advanced(at(Some(9), true, None));
    assert!(dropped.binlog().is_dropped());
    assert!(text(&dropped).ends_with(r#""future":"x","dropped":true}"#));
    // Back again (CREATE TABLE after the DROP): `dropped` goes.
    let back = dropped.advanced(at(None, false, None));
    assert!(!back.binlog().is_dropped());
    assert!(!text(&back).contains("dropped"));
    assert_eq!(back.version(), Some(9));
}

#[test]
fn resnapshot_requested() {
    let b = cdc_bookmark().resnapshot("the table was replaced", Some(8));
    assert_eq!(
        text(&b),
        r#"{"version":8,"initial_full_table_complete":true,"future":"x","resnapshot":"the table was replaced"}"#
    );
    assert_eq!(
        b.binlog().resnapshot_reason(),
        Some("the table was replaced")
    );
    assert!(b.needs_initial_load());
    assert_eq!(b.binlog().position(), None);
    // Purged binlog: the version stays.
    assert_eq!(cdc_bookmark().resnapshot("purged", None).version(), Some(7));
    // The reload completes it: the reason goes, the new position comes.
    let reloaded = b.load_complete(10, Some(&start()));
    assert_eq!(reloaded.binlog().resnapshot_reason(), None);
    assert_eq!(reloaded.version(), Some(10));
    assert!(!reloaded.needs_initial_load());
}

#[test]
fn table_dropped_between_runs() {
    let b = cdc_bookmark().table_gone(8);
    assert_eq!(
        Value::Object(b.to_map()),
        json!({"version": 8, "initial_full_table_complete": true, "future": "x",
               "resnapshot": "its table was dropped", "dropped": true})
    );
    assert!(b.binlog().is_dropped());
    // Read back by a later run, which must not start yet another version.
    let again = bm(Value::Object(b.to_map()));
    assert!(again.binlog().is_dropped());
    assert_eq!(again, b);
    assert!(!again.is_empty());
}

#[test]
fn dropped_false_is_not_dropped() {
    assert!(!bm(json!({"dropped": false})).binlog().is_dropped());
}

#[test]
fn a_pass_starts_after_every_version_and_an_unfinished_one_is_resumed() {
    use super::FullTablePass;
    let state = State::from_value(json!({"bookmarks": {
        "a": {"version": 5000, "initial_full_table_complete": true},
        "b": {"replication_key_value": 3}
    }}))
    .unwrap();
    let fresh = FullTablePass::begin(&state, 1000);
    assert_eq!(
        fresh,
        FullTablePass {
            start: 5001,
            resumed: false
        }
    );
    assert_eq!(FullTablePass::begin(&state, 9000).start, 9000);
    assert!(
        !fresh.finished(&state.bookmark("a").unwrap()),
        "a new pass skips nothing"
    );

    let mut interrupted = state.clone();
    interrupted.set_full_table_pass(Some(4000));
    assert_eq!(interrupted.as_value()["full_table_pass"], json!(4000));
    let pass = FullTablePass::begin(&interrupted, 9000);
    assert_eq!(
        pass,
        FullTablePass {
            start: 4000,
            resumed: true
        }
    );
    assert!(pass.finished(&bm(
        json!({"version": 4000, "initial_full_table_complete": true})
    )));
    assert!(
        !pass.finished(&bm(
            json!({"version": 3999, "initial_full_table_complete": true})
        )),
        "completed before the pass"
    );
    assert!(
        !pass.finished(&bm(json!({"version": 4500, "initial_full_table_complete": true, "last_pk_fetched": {"id": 1}}))),
        "a later load under way"
    );
    assert!(
        !pass.finished(&bm(json!({"version": 4500}))),
        "never completed"
    );
    interrupted.set_full_table_pass(None);
    assert_eq!(interrupted, state, "a completed pass leaves no key");
}
