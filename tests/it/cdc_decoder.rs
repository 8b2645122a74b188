//! Differential tests of the row decoder: every rows event the live server writes for the
//! fixture tables (every type, FULL and NO_LOG row metadata; inserts, updates with both images,
//! deletes, NULLs) gives byte-identical values through the tap's decoder and through the
//! driver's (`mysql_common`'s `BinlogRow` and `text_bytes`, the path the tap used before).

use std::collections::HashMap;

use mysql::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql::prelude::Queryable;
use mysql::{BinlogDumpFlags, BinlogRequest};
use tap_mysql::testing::{
    event_texts, text_bytes, ColumnDecoding, ColumnKind, ImageTexts, IntWidth, RowTexts,
};

use crate::support::*;

/// DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, NUMERIC_PRECISION, NUMERIC_SCALE,
/// DATETIME_PRECISION.
type InfoColumn = (
    String,
    String,
    Option<String>,
    Option<u32>,
    Option<u32>,
    Option<u32>,
);

/// The decoding facts of every column of `db`.`table`, from information_schema (as the tap's
/// catalog reads them).
pub fn table_decodings(db: &str, table: &str) -> Vec<ColumnDecoding> {
    let mut c = db_conn(db);
    let rows: Vec<InfoColumn> = c
        .exec(
            "SELECT DATA_TYPE, COLUMN_TYPE, CHARACTER_SET_NAME, NUMERIC_PRECISION, NUMERIC_SCALE, DATETIME_PRECISION
             FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .expect("columns");
    assert!(!rows.is_empty(), "{db}.{table} has columns");
    rows.into_iter()
        .map(|(dt, ct, charset, precision, scale, fsp)| {
            let unsigned = ct.contains("unsigned");
            let int = |width| ColumnKind::Integer { width, unsigned };
            let labels = || {
                let inner = ct[ct.find('(').unwrap() + 1..ct.rfind(')').unwrap()].to_string();
                inner
                    .split(',')
                    .map(|l| l.trim_matches('\'').to_string())
                    .collect::<Vec<_>>()
            };
            let fsp = fsp.unwrap_or(0);
            let kind = match dt.as_str() {
                "tinyint" if ct.starts_with("tinyint(1)") => ColumnKind::Boolean,
                "tinyint" => int(IntWidth::Tiny),
                "smallint" => int(IntWidth::Small),
                "mediumint" => int(IntWidth::Medium),
                "int" => int(IntWidth::Int),
                "bigint" => int(IntWidth::Big),
                "bit" => ColumnKind::Bit {
                    bits: precision.unwrap_or(1),
                },
                "year" => ColumnKind::Year,
                "decimal" => ColumnKind::Decimal {
                    precision: precision.unwrap_or(10),
                    scale: scale.unwrap_or(0),
                },
                "float" => ColumnKind::Float,
                "double" => ColumnKind::Double,
                "date" => ColumnKind::Date,
                "datetime" => ColumnKind::DateTime { fsp },
                "timestamp" => ColumnKind::Timestamp { fsp },
                "time" => ColumnKind::Time { fsp },
                "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => {
                    ColumnKind::Text { max_chars: None }
                }
                "enum" => ColumnKind::Enum { values: labels() },
                "set" => ColumnKind::Set { values: labels() },
                "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                    ColumnKind::Binary
                }
                "json" => ColumnKind::Json,
                "uuid" => ColumnKind::Uuid,
                "inet4" => ColumnKind::Inet4,
                "inet6" => ColumnKind::Inet6,
                "point" | "geometry" | "linestring" | "polygon" => ColumnKind::Spatial,
                other => panic!("{table}: no kind for {other}"),
            };
            ColumnDecoding {
                kind,
                charset,
                fixed_binary_len: ct
                    .strip_prefix("binary(")
                    .and_then(|r| r.trim_end_matches(')').parse().ok()),
            }
        })
        .collect()
}

/// The driver's texts of every row of a rows event: the oracle. The driver's row holds only
/// the columns in the image (all of them under `binlog_row_image=FULL`); they are put back at
/// their table positions, absent columns as None.
pub fn oracle_texts(
    tme: &TableMapEvent<'_>,
    rows: &RowsEventData<'_>,
    decodings: &[ColumnDecoding],
) -> Result<Vec<RowTexts>, String> {
    let positions = |bits: Option<Vec<bool>>| -> Vec<usize> {
        bits.unwrap_or_default()
            .iter()
            .enumerate()
            .filter(|(_, p)| **p)
            .map(|(i, _)| i)
            .collect()
    };
    let before = positions(
        rows.columns_before_image()
            .map(|b| b.iter().by_vals().collect()),
    );
    let after = positions(
        rows.columns_after_image()
            .map(|b| b.iter().by_vals().collect()),
    );
    let n = tme.columns_count() as usize;
    let image = |row: Option<mysql::binlog::row::BinlogRow>,
                 at: &[usize]|
     -> Result<Option<ImageTexts>, String> {
        let Some(row) = row else { return Ok(None) };
        let mut texts = vec![None; n];
        for (k, &i) in at.iter().enumerate() {
            if let Some(v) = row.as_ref(k) {
                texts[i] = text_bytes(&decodings[i], v)?;
            }
        }
        Ok(Some(texts))
    };
    rows.rows(tme)
        .map(|r| {
            let (b, a) = r.map_err(|e| e.to_string())?;
            Ok((image(b, &before)?, image(a, &after)?))
        })
        .collect()
}

/// Reads the binlog from (`file`, `pos`) to its end and compares both decoders on every rows
/// event of the tables in `decodings`; returns how many rows were compared per table.
fn compare_from(
    file: &str,
    pos: u64,
    decodings: &HashMap<String, Vec<ColumnDecoding>>,
) -> HashMap<String, usize> {
    let conn = root_conn();
    let request = BinlogRequest::new(4242)
        .with_filename(file.as_bytes().to_vec())
        .with_pos(pos)
        .with_flags(BinlogDumpFlags::BINLOG_DUMP_NON_BLOCK);
    let stream = conn.get_binlog_stream(request).expect("binlog dump");
    let mut compared: HashMap<String, usize> = HashMap::new();
    let mut tmes: HashMap<u64, TableMapEvent<'static>> = HashMap::new();
    for ev in stream {
        let ev = ev.expect("binlog event");
        match ev.read_data().expect("event data") {
            Some(EventData::TableMapEvent(t)) => {
                tmes.insert(t.table_id(), t.into_owned());
            }
            Some(EventData::RowsEvent(rows)) => {
                let tme = &tmes[&rows.table_id()];
                let Some(dec) = decodings.get(&*tme.table_name()) else {
                    continue;
                };
                let want = oracle_texts(tme, &rows, dec).expect("the driver decodes the event");
                let got = event_texts(tme, &rows, dec).expect("the tap decodes the event");
                assert_eq!(got.len(), want.len(), "{}: rows", tme.table_name());
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        g,
                        w,
                        "{} row {i} of a {:?}",
                        tme.table_name(),
                        rows.table_id()
                    );
                }
                *compared.entry(tme.table_name().into_owned()).or_default() += got.len();
            }
            _ => {}
        }
    }
    compared
}

fn master_position() -> (String, u64) {
    let mut c = root_conn();
    let row: mysql::Row = c
        .query_first("SHOW MASTER STATUS")
        .unwrap()
        .expect("binlog on");
    (row.get(0).unwrap(), row.get(1).unwrap())
}

/// Writes inserts, updates (every column, to and from NULL), key changes and deletes of the
/// fixture rows into `table` (a copy of `source`).
fn churn(db: &str, source: &str, table: &str, cols: &str) {
    let mut c = db_conn(db);
    c.query_drop(format!(
        "SET SESSION sql_mode = ''; SET SESSION time_zone = '+00:00';
         CREATE TABLE `{table}` LIKE `{source}`;
         INSERT INTO `{table}` ({cols}) SELECT {cols} FROM `{source}` ORDER BY id;
         UPDATE `{table}` t
           JOIN (SELECT id, LEAD(id) OVER (ORDER BY id) AS next_id FROM `{source}`) m ON m.id = t.id
           JOIN `{source}` s ON s.id = m.next_id
           SET {};
         UPDATE `{table}` SET id = id + 1000 WHERE id % 2 = 0;
         DELETE FROM `{table}` WHERE id % 3 = 0;",
        cols.split(", ")
            .filter(|c| *c != "`id`")
            .map(|c| format!("t.{c} = s.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    ))
    .unwrap();
}

fn columns_of(db: &str, table: &str) -> String {
    let mut c = db_conn(db);
    let cols: Vec<String> = c
        .exec(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND EXTRA NOT LIKE '%GENERATED%' ORDER BY ORDINAL_POSITION",
            (db, table),
        )
        .unwrap();
    cols.iter()
        .map(|c| format!("`{c}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[test]
fn every_fixture_type_decodes_byte_identically_to_the_driver() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_decoder");
    load_fixture(&db, "types.sql");
    let mut c = db_conn(&db);
    // More values beside the fixture's, with NULLs. (Negative TIME(1)/TIME(2) values with a
    // fraction are left out: the driver computes them in unsigned arithmetic and panics in a
    // debug build; `negative_fractional_times_match_the_snapshot` checks them.)
    c.query_drop(
        "CREATE TABLE extra (id int PRIMARY KEY, p point, g geometry, u uuid, i6 inet6, i4 inet4,
           t2 time(2), t4 time(4), dt2 datetime(2), ts6 timestamp(6) NULL, l1 varchar(20) CHARACTER SET latin1,
           big char(255), d decimal(30,10), y year, b binary(8));
         INSERT INTO extra VALUES
           (1, POINT(1.5, -2.25), ST_GeomFromText('LINESTRING(0 0,1 1)'), '6ccd780c-baba-1026-9564-5b8c656024db',
            '::ffff:192.0.2.1', '10.0.0.1', '00:00:01.50', '-838:59:58.9999', '2024-02-29 23:59:59.99',
            '2038-01-19 03:14:07.999999', 'caf\u{e9} \u{20ac}', REPEAT('x', 255), -12345678901234567890.0123456789, 0, 'ab'),
           (2, NULL, NULL, NULL, NULL, NULL, '12:00:00.01', '00:00:00.0001', '1000-01-01 00:00:00.01',
            '1970-01-01 00:00:01.000001', '', '', 0.0000000001, 2155, NULL),
           (3, POINT(0, 0), POINT(1, 1), UUID(), '::', '0.0.0.0', '-00:00:01', '-12:34:56.7891', NULL, NULL, NULL, NULL, -0.5, 1901, '')",
    )
    .unwrap();
    let mut decodings = HashMap::new();
    let mut expected_rows = Vec::new();
    for metadata in ["FULL", "NO_LOG"] {
        let _m = set_global("binlog_row_metadata", metadata);
        let (file, pos) = master_position();
        let mut tables = HashMap::new();
        for source in ["all_types", "extra"] {
            let table = format!("{source}_{}", metadata.to_lowercase());
            churn(&db, source, &table, &columns_of(&db, source));
            tables.insert(table.clone(), table_decodings(&db, &table));
            expected_rows.push(table);
        }
        let compared = compare_from(&file, pos, &tables);
        for t in tables.keys() {
            // Inserts, updates (two images each), the key change and the deletes.
            assert!(
                compared.get(t).copied().unwrap_or(0) >= 6,
                "{metadata}: {t}: {compared:?}"
            );
        }
        decodings.extend(tables);
    }
    assert_eq!(decodings.len(), 4, "{expected_rows:?}");
}

/// Negative TIME(1) and TIME(2) values with a fraction (the encoding where the driver's decoder
/// goes wrong): the binlog records carry the snapshot's text.
#[test]
fn negative_fractional_times_match_the_snapshot() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_neg_time");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int PRIMARY KEY, t1 time(1), t2 time(2), t3 time(3))")
        .unwrap();
    let cfg = config_for(&db);
    let catalog = log_based(&db, &["t"], &[]);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    c.query_drop(
        "INSERT INTO t VALUES (1, '-00:00:01.5', '-00:00:01.50', '-00:00:01.500'),
           (2, '-838:59:58.9', '-838:59:58.99', '-838:59:58.999'), (3, '-00:00:00.1', '-00:00:00.01', '-00:00:00.001'),
           (4, '-12:00:00.0', '-12:00:00.00', '12:00:00.001')",
    )
    .unwrap();
    let cdc: Vec<_> = sync(&cfg, Some(&catalog), Some(&state)).raw_records();
    let mut plain = config_for(&db);
    plain["max_parallel_streams"] = serde_json::json!(1);
    let mut snap_catalog = discover(&plain);
    only_streams(&mut snap_catalog, &[&format!("{db}-t")]);
    select_all(&mut snap_catalog, &[]);
    let snapshot = sync(&plain, Some(&snap_catalog), None).raw_records();
    assert_eq!(cdc.len(), 4);
    assert_eq!(snapshot.len(), 4);
    for (got, want) in cdc.iter().zip(&snapshot) {
        for col in ["id", "t1", "t2", "t3"] {
            assert_eq!(got[col], want[col], "{col}: {got:?}");
        }
    }
    assert_eq!(cdc[0]["t2"], "\"-00:00:01.50\"");
    assert_eq!(cdc[1]["t1"], "\"-838:59:58.9\"");
}

/// A session that writes with its own `binlog_row_image=MINIMAL` leaves columns out of its
/// rows: the run stops with a clear error naming the column instead of mapping values to the
/// wrong columns, and the bookmark stays before that transaction.
#[test]
fn a_row_image_without_a_selected_column_stops_the_run() {
    let _g = cdc_lock();
    let db = fresh_db("cdc_minimal_image");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(10)); INSERT INTO t VALUES (1, 10, 'x')")
        .unwrap();
    let cfg = config_for(&db);
    let catalog = log_based(&db, &["t"], &[]);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    c.query_drop("SET SESSION binlog_row_image = 'MINIMAL'; UPDATE t SET a = 11 WHERE id = 1")
        .unwrap();
    let run = sync_any(&cfg, Some(&catalog), Some(&state));
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let last = run
        .stderr
        .trim_end()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(
        last.contains("column 'id'")
            && last.contains("not in the row image")
            && last.contains("binlog_row_image"),
        "{last}"
    );
    assert!(run.raw_records().is_empty(), "no record of a partial row");
    for m in run.messages.iter().filter(|m| m["type"] == "STATE") {
        assert_eq!(
            m["value"], state,
            "the bookmark stays before the transaction"
        );
    }
}
