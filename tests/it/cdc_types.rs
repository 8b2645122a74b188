//! LOG_BASED with MariaDB's spatial, UUID, INET6 and INET4 columns: every value a binlog RECORD
//! carries (inserts, updates, deletes) is the same JSON text the snapshot path emits for that row,
//! with FULL and with NO_LOG binlog row metadata.

use std::collections::{BTreeMap, BTreeSet};

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

/// One row's values as raw JSON text, by column.
type Row = BTreeMap<String, String>;

crate::support::under_full_and_no_log!(types_case: cdc_types_binlog_values_equal_snapshot_values_with_full_metadata, cdc_types_binlog_values_equal_snapshot_values_with_no_log_metadata);

/// Points (the `p` column) as SQL expressions.
const POINTS: &[&str] = &[
    "ST_GeomFromText('POINT(-122.41941550000001 37.77492950000001)')",
    "ST_GeomFromText('POINT(1e15 -1e-16)')",
    "ST_GeomFromText('POINT(1234567890123456 0.000001)')",
    "ST_GeomFromText('POINT(0.1 0.30000000000000004)')",
    "ST_GeomFromText('POINT(-0 5e-324)')",
    "ST_GeomFromText('POINT(1.7976931348623157e308 -2.2250738585072014e-308)')",
    "ST_GeomFromText('POINT(123456789012345.6 -999999999999999.9)')",
    "ST_GeomFromText('POINT(0.00000015 -0.000000000000001)')",
    "ST_GeomFromText('POINT(2.3522 48.8566)', 4326)",
    "ST_GeomFromText('POINT(0 0)')",
];

/// Any geometry (the `g` column), some with an SRID.
const GEOMETRIES: &[&str] = &[
    "ST_GeomFromText('POINT(1.5 -2.25)')",
    "ST_GeomFromText('LINESTRING(0 0,1.5 -2.25,0.0000001 12345678.9,-1e20 3)')",
    "ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 10,0 0),(2 2,3 2,3 3,2 3,2 2),(5 5,6 5,6 6,5 5))')",
    "ST_GeomFromText('MULTIPOINT(1 1,-2 -2,0.5 1e-7)')",
    "ST_GeomFromText('MULTILINESTRING((0 0,1 1),(2 2,3 3,4 4))')",
    "ST_GeomFromText('MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((2 2,3 2,3 3,2 2),(2.1 2.1,2.2 2.1,2.2 2.2,2.1 2.1)))')",
    "ST_GeomFromText('GEOMETRYCOLLECTION(POINT(1 1),LINESTRING(0 0,1 1),POLYGON((0 0,1 0,1 1,0 0)))')",
    "ST_GeomFromText('GEOMETRYCOLLECTION EMPTY')",
    "GeometryCollection(Point(1, 1), GeometryCollection(Point(2, 2), LineString(Point(0, 0), Point(-1.25, 1e16))))",
    "ST_GeomFromText('POLYGON((-73.98 40.75,-73.97 40.75,-73.97 40.76,-73.98 40.75))', 4326)",
    "ST_GeomFromText('MULTIPOINT(-8238310.24 4969803.34,1e-15 -1e15)', 3857)",
    "ST_GeomFromText('LINESTRING(0 0)')",
];

/// UUIDs: version 1 (which MariaDB stores segment-swapped), 4, 6, 7, 8, variant 0, the nil and
/// max values, trailing zero bytes, and UUID() (a server-made version 1).
const UUIDS: &[&str] = &[
    "'6ccd780c-baba-1026-9564-5b8c656024db'",
    "'123e4567-e89b-42d3-a456-426614174000'",
    "'00000000-0000-0000-0000-000000000000'",
    "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
    "'01890a5d-ac96-774b-bcce-b302099a8057'",
    "'1ec9414c-232a-6b00-b3c8-9e6bdeced846'",
    "'123e4567-e89b-12d3-7456-426614174000'",
    "'00000000-0000-0100-8000-000000000000'",
    "'12345678-1234-1234-9234-123456780000'",
    "'00000000-0000-8000-9000-000000000001'",
    "'FFFFFFFF-FFFF-1FFF-BFFF-FFFFFFFFFFFF'",
    "UUID()",
];

/// INET6 values, several of which MariaDB prints differently from RFC 5952.
const INET6S: &[&str] = &[
    "'::ffff:192.0.2.1'",
    "'::'",
    "'::1'",
    "'2001:db8:85a3:8d3:1319:8a2e:370:7348'",
    "'1:0:2:3:4:5:6:7'",
    "'1:2:3:4:5:6:7:0'",
    "'::1.2.3.4'",
    "'::ffff:0:1'",
    "'0:0:0:0:0:0:ffff:1'",
    "'fe80::1:2'",
    "'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'",
    "'2001:0DB8:0000:0000:0000:0000:0000:0000'",
    "'1:0:0:2:0:0:3:4'",
];

const INET4S: &[&str] = &[
    "'0.0.0.0'",
    "'10.0.0.0'",
    "'192.168.1.10'",
    "'255.255.255.255'",
    "'0.0.0.1'",
    "'010.000.000.001'",
];

/// The SQL tuple of row `id`, taking value `k` of each list (every 7th row is all NULL).
fn tuple(id: i64, k: usize) -> String {
    if id % 7 == 0 {
        return format!("({id}, NULL, NULL, NULL, NULL, NULL)");
    }
    format!(
        "({id}, {}, {}, {}, {}, {})",
        POINTS[k % POINTS.len()],
        GEOMETRIES[k % GEOMETRIES.len()],
        UUIDS[k % UUIDS.len()],
        INET6S[k % INET6S.len()],
        INET4S[k % INET4S.len()]
    )
}

fn id_of(r: &Row) -> i64 {
    r["id"].parse().unwrap()
}

/// A row without `_sdc_deleted_at`.
fn values(r: &Row) -> Row {
    let mut r = r.clone();
    r.remove("_sdc_deleted_at");
    r
}

/// The snapshot path's values for the table now: a FULL_TABLE read of the same stream.
fn snapshot(cfg: &Value, catalog: &Value) -> BTreeMap<i64, Row> {
    let mut full = catalog.clone();
    for s in full["streams"].as_array_mut().unwrap() {
        for m in s["metadata"].as_array_mut().unwrap() {
            if m["breadcrumb"] == json!([]) {
                m["metadata"]["replication-method"] = json!("FULL_TABLE");
            }
        }
    }
    sync(cfg, Some(&full), None)
        .raw_records()
        .into_iter()
        .map(|r| (id_of(&r), values(&r)))
        .collect()
}

fn assert_same(what: &str, got: &Row, want: &Row) {
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        want.keys().collect::<Vec<_>>(),
        "{what}: columns"
    );
    for (col, value) in got {
        assert_eq!(
            value, &want[col],
            "{what}: column {col}: binlog {value} vs snapshot {}",
            want[col]
        );
    }
}

/// Checks one LOG_BASED run: the last record of every changed row is its after image and equals
/// the snapshot of the table now; a deleted row's last record carries `_sdc_deleted_at` and the
/// row as it was before (`before`).
fn check_cdc(
    what: &str,
    run: &Run,
    now: &BTreeMap<i64, Row>,
    before: &BTreeMap<i64, Row>,
    changed: &BTreeSet<i64>,
    deleted: &BTreeSet<i64>,
) {
    let recs = run.raw_records();
    assert!(!recs.is_empty(), "{what}: no records");
    let mut last: BTreeMap<i64, Row> = BTreeMap::new();
    for r in recs {
        last.insert(id_of(&r), r);
    }
    let ids: BTreeSet<i64> = last.keys().copied().collect();
    assert_eq!(
        ids,
        changed.union(deleted).copied().collect::<BTreeSet<_>>(),
        "{what}: rows with binlog records"
    );
    for (id, r) in &last {
        if deleted.contains(id) {
            assert!(
                r["_sdc_deleted_at"].starts_with('"'),
                "{what}: row {id} deleted: {r:?}"
            );
            assert!(!now.contains_key(id), "{what}: row {id} is gone");
            assert_same(
                &format!("{what}: before image of deleted row {id}"),
                &values(r),
                &before[id],
            );
        } else {
            assert_eq!(r["_sdc_deleted_at"], "null", "{what}: row {id}");
            assert_same(
                &format!("{what}: after image of row {id}"),
                &values(r),
                &now[id],
            );
        }
    }
}

fn types_case(metadata: &str) {
    let (_case, db) = cdc_case("cdc_types", metadata);
    let mut c = db_conn(&db);
    c.query_drop(
        "CREATE TABLE t (id int PRIMARY KEY, p point, g geometry, u uuid, i6 inet6, i4 inet4)",
    )
    .unwrap();
    let initial: Vec<String> = (1..=6).map(|id| tuple(id, id as usize + 100)).collect();
    c.query_drop(format!("INSERT INTO t VALUES {}", initial.join(", ")))
        .unwrap();
    let cfg = config_for(&db);
    let catalog = log_based(&db, &["t"], &[]);

    // Initial load (a snapshot read).
    let first = sync(&cfg, Some(&catalog), None);
    let loaded: BTreeMap<i64, Row> = first
        .raw_records()
        .iter()
        .map(|r| (id_of(r), values(r)))
        .collect();
    assert_eq!(loaded.len(), 6);
    let s1 = first.last_state();

    // Phase A: inserts (every value of every list), updates that change the spatial, UUID and
    // INET values (to and from NULL too), deletes of rows from the initial load.
    let inserted: Vec<String> = (10..40).map(|id| tuple(id, id as usize)).collect();
    c.query_drop(format!("INSERT INTO t VALUES {}", inserted.join(", ")))
        .unwrap();
    c.query_drop(format!(
        "UPDATE t SET p = {}, g = {}, u = {}, i6 = {}, i4 = {} WHERE id = 3;
         UPDATE t SET p = NULL, g = {}, u = NULL, i6 = {}, i4 = NULL WHERE id = 12;
         UPDATE t SET g = {}, u = {}, i6 = {}, i4 = {} WHERE id = 14;
         UPDATE t SET g = NULL, i6 = NULL WHERE id = 4;
         START TRANSACTION;
           UPDATE t SET g = {}, u = {} WHERE id BETWEEN 15 AND 18;
           DELETE FROM t WHERE id IN (1, 2);
           INSERT INTO t VALUES {};
         COMMIT;",
        POINTS[5],
        GEOMETRIES[8],
        UUIDS[0],
        INET6S[5],
        INET4S[1],
        GEOMETRIES[2],
        INET6S[4],
        GEOMETRIES[5],
        UUIDS[6],
        INET6S[8],
        INET4S[3],
        GEOMETRIES[10],
        UUIDS[11],
        tuple(40, 3)
    ))
    .unwrap();
    let second = sync(&cfg, Some(&catalog), Some(&s1));
    let mid = snapshot(&cfg, &catalog);
    let changed_a: BTreeSet<i64> = (10..=40).chain([3, 4]).collect();
    let deleted_a: BTreeSet<i64> = [1, 2].into();
    check_cdc(
        &format!("{metadata}, first changes"),
        &second,
        &mid,
        &loaded,
        &changed_a,
        &deleted_a,
    );

    // The tricky cases are really there: the server's own spellings, which the binlog path
    // must have produced too.
    let all_mid: Vec<&String> = mid.values().flat_map(|r| r.values()).collect();
    for want in [
        r#"{"type": "Point", "coordinates": [1e15, -1e-16]}"#,
        r#"{"type": "Point", "coordinates": [1.234567890123456e15, 0.000001]}"#,
        r#"{"type": "Point", "coordinates": [0, 5e-324]}"#,
        r#"{"type": "Point", "coordinates": [0.00000015, -0.000000000000001]}"#,
        r#"{"type": "GeometryCollection", "geometries": []}"#,
        r#""6ccd780c-baba-1026-9564-5b8c656024db""#,
        r#""1::2:3:4:5:6:7""#,
        r#""1:2:3:4:5:6:7::""#,
        r#""::255.255.0.1""#,
        r#""::ffff:0.0.0.1""#,
        r#""10.0.0.1""#,
    ] {
        assert!(
            all_mid.iter().any(|v| v.as_str() == want),
            "{metadata}: {want} in the snapshot"
        );
    }

    // Phase B: change the values again (other lists' values), delete rows inserted in phase A,
    // insert new rows.
    let s2 = second.last_state();
    let mut sql = String::from("START TRANSACTION;");
    for id in 20..30 {
        let k = id as usize * 3 + 1;
        sql.push_str(&format!(
            "UPDATE t SET p = {}, g = {}, u = {}, i6 = {}, i4 = {} WHERE id = {id};",
            POINTS[k % POINTS.len()],
            GEOMETRIES[k % GEOMETRIES.len()],
            UUIDS[k % UUIDS.len()],
            INET6S[k % INET6S.len()],
            INET4S[k % INET4S.len()]
        ));
    }
    sql.push_str("COMMIT; DELETE FROM t WHERE id IN (10, 11, 13, 31, 40);");
    let more: Vec<String> = (50..56).map(|id| tuple(id, id as usize * 5)).collect();
    sql.push_str(&format!("INSERT INTO t VALUES {};", more.join(", ")));
    sql.push_str(&format!(
        "UPDATE t SET u = {}, g = {} WHERE id = 3;",
        UUIDS[9], GEOMETRIES[0]
    ));
    c.query_drop(sql).unwrap();
    let third = sync(&cfg, Some(&catalog), Some(&s2));
    let end = snapshot(&cfg, &catalog);
    let changed_b: BTreeSet<i64> = (20..30).chain(50..56).chain([3]).collect();
    let deleted_b: BTreeSet<i64> = [10, 11, 13, 31, 40].into();
    check_cdc(
        &format!("{metadata}, second changes"),
        &third,
        &end,
        &mid,
        &changed_b,
        &deleted_b,
    );
    assert_eq!(end.len(), 6 - 2 + 31 - 5 + 6, "rows left");
}
