//! MySQL-only binlog paths, on binlog files recorded from real MySQL servers
//! (../shared/fixtures/mysql-binlogs): no MySQL server runs here. A clone without that folder
//! skips these tests, each with one `skipped:` line; where the folder is, a named file that is
//! missing or unreadable fails the test. (`mysql_events.rs` covers the same paths with events
//! built here, on any clone.)

use std::path::{Path, PathBuf};

use mysql_common::binlog::consts::BinlogVersion;
use mysql_common::binlog::events::{EventData, RowsEventData, TableMapEvent};
use mysql_common::binlog::BinlogFile;
use tap_mysql::testing::ColumnKind;
use tap_mysql::testing::MysqlGtidSet;
use tap_mysql::testing::{text_bytes, ColumnDecoding};

/// The shared folder of recorded binlogs (never copied into the project).
const FOLDER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../shared/fixtures/mysql-binlogs"
);

/// The recorded file `name`: None, after one `skipped:` line, when the shared folder is absent;
/// a panic when the folder is there but the file is missing or unreadable.
fn fixture(name: &str) -> Option<PathBuf> {
    let dir = Path::new(FOLDER);
    if !dir.is_dir() {
        eprintln!(
            "skipped: the recorded MySQL binlogs ({}) are not here (only the project's shared folder has them)",
            dir.display()
        );
        return None;
    }
    let p = dir.join(name);
    if let Err(e) = std::fs::read(&p) {
        panic!(
            "recorded binlog {} is missing or unreadable ({e}), though its folder is here",
            p.display()
        );
    }
    Some(p)
}

fn events(name: &str) -> Option<Vec<std::io::Result<mysql_common::binlog::events::Event>>> {
    let path = fixture(name)?;
    let file = std::fs::File::open(&path)
        .unwrap_or_else(|e| panic!("recorded binlog {}: {e}", path.display()));
    let reader = BinlogFile::new(BinlogVersion::Version4, std::io::BufReader::new(file))
        .unwrap_or_else(|e| panic!("{} is not a binlog file: {e}", path.display()));
    Some(reader.collect())
}

/// Calls `f` with each rows event of `evs` and the table map it refers to.
fn each_rows_event(
    evs: Vec<std::io::Result<mysql_common::binlog::events::Event>>,
    mut f: impl FnMut(&RowsEventData<'_>, &TableMapEvent<'static>),
) {
    let mut tmes = std::collections::HashMap::new();
    for ev in evs {
        let ev = ev.expect("recorded event");
        match ev.read_data().expect("event data") {
            Some(EventData::TableMapEvent(t)) => {
                tmes.insert(t.table_id(), t.into_owned());
            }
            Some(EventData::RowsEvent(rows)) => f(&rows, &tmes[&rows.table_id()]),
            _ => {}
        }
    }
}

#[test]
fn mysql_binary_json_decodes_to_json_documents() {
    let Some(evs) = events("json.binlog.000001") else {
        return;
    };
    let mut decoded = 0;
    each_rows_event(evs, |rows, tme| {
        for row in rows.rows(tme) {
            let (before, after) = row.expect("row");
            for image in [before, after].into_iter().flatten() {
                for i in 0..image.len() {
                    let Some(v) = image.as_ref(i) else { continue };
                    if matches!(v, mysql_common::binlog::value::BinlogValue::Jsonb(_)) {
                        let col = ColumnDecoding {
                            kind: ColumnKind::Json,
                            charset: None,
                            fixed_binary_len: None,
                        };
                        let text = text_bytes(&col, v)
                            .expect("binary JSON decodes")
                            .expect("not NULL");
                        serde_json::from_slice::<serde_json::Value>(&text)
                            .expect("valid JSON text");
                        decoded += 1;
                    }
                }
            }
        }
    });
    assert!(decoded > 0, "the recording holds binary JSON values");
}

#[test]
fn mysql_gtid_events_build_gtid_sets() {
    let Some(evs) = events("binlog_transaction_with_GTID.000001") else {
        return;
    };
    let mut set = MysqlGtidSet::default();
    for ev in evs {
        let ev = ev.expect("recorded event");
        if let Some(EventData::GtidEvent(g)) = ev.read_data().expect("event data") {
            let sid = g.sid();
            let uuid = format!(
                "{}-{}-{}-{}-{}",
                hex(&sid[0..4]),
                hex(&sid[4..6]),
                hex(&sid[6..8]),
                hex(&sid[8..10]),
                hex(&sid[10..16])
            );
            set.add(&uuid, "", g.gno());
        }
    }
    assert!(!set.is_empty(), "GTID events found");
    let text = set.to_string();
    assert_eq!(
        MysqlGtidSet::parse(&text).unwrap(),
        set,
        "{text} round-trips"
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn truncated_recordings_end_without_panic_and_are_detectable() {
    for name in [
        "binlog_truncated_event.000001",
        "binlog_truncated_prev_gtid_event.000001",
    ] {
        let Some(path) = fixture(name) else { return };
        let size = std::fs::metadata(&path).unwrap().len();
        let Some(evs) = events(name) else { return };
        // Decoding what is there never panics; a cut event shows as bytes left unread (or as an
        // error), which the reader must report rather than treat as the end of the log.
        let mut consumed = 4u64;
        let mut errors = 0;
        for e in &evs {
            match e {
                Ok(ev) => {
                    consumed += ev.header().event_size() as u64;
                    if ev.read_data().is_err() {
                        errors += 1;
                    }
                }
                Err(_) => errors += 1,
            }
        }
        assert!(
            errors > 0 || consumed < size,
            "{name}: truncation detectable ({consumed} of {size} bytes)"
        );
    }
}

#[test]
fn compressed_transactions_are_refused_not_skipped() {
    let Some(evs) = events("transaction_compression.000001") else {
        return;
    };
    let refused = evs
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .filter_map(|e| tap_mysql::testing::refused_event(e.header().event_type_raw()))
        .collect::<Vec<_>>();
    assert!(
        !refused.is_empty(),
        "the recording's compressed payloads are refused"
    );
    assert!(
        refused[0].contains("binlog_transaction_compression"),
        "{}",
        refused[0]
    );
    // Ordinary events of an uncompressed recording are not refused.
    let Some(plain) = events("binlog_transaction.000001") else {
        return;
    };
    assert!(plain
        .iter()
        .filter_map(|e| e.as_ref().ok())
        .all(|e| tap_mysql::testing::refused_event(e.header().event_type_raw()).is_none()));
}

#[test]
fn mysql_enum_and_set_values_map_to_labels() {
    let Some(evs) = events("mysql-enum-string-set.000001") else {
        return;
    };
    let mut mapped = 0;
    each_rows_event(evs, |rows, tme| {
        let mut enums: Vec<Vec<String>> = Vec::new();
        let mut sets: Vec<Vec<String>> = Vec::new();
        for f in tme.iter_optional_meta().flatten() {
            use mysql_common::binlog::events::OptionalMetadataField::*;
            match f {
                EnumStrValue(v) => {
                    enums = v
                        .iter_values()
                        .map(|x| {
                            x.unwrap()
                                .values()
                                .iter()
                                .map(|s| s.value().into_owned())
                                .collect()
                        })
                        .collect()
                }
                SetStrValue(v) => {
                    sets = v
                        .iter_values()
                        .map(|x| {
                            x.unwrap()
                                .values()
                                .iter()
                                .map(|s| s.value().into_owned())
                                .collect()
                        })
                        .collect()
                }
                _ => {}
            }
        }
        if !matches!(
            rows,
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_)
        ) {
            return;
        }
        for row in rows.rows(tme) {
            let (_, after) = row.expect("row");
            let Some(after) = after else { continue };
            let (mut e, mut s) = (0, 0);
            for i in 0..after.len() {
                let ty = tme.get_column_type(i).ok().flatten();
                let Some(v) = after.as_ref(i) else { continue };
                let kind = match ty {
                    Some(mysql_common::constants::ColumnType::MYSQL_TYPE_ENUM)
                        if e < enums.len() =>
                    {
                        e += 1;
                        ColumnKind::Enum {
                            values: enums[e - 1].clone(),
                        }
                    }
                    Some(mysql_common::constants::ColumnType::MYSQL_TYPE_SET) if s < sets.len() => {
                        s += 1;
                        ColumnKind::Set {
                            values: sets[s - 1].clone(),
                        }
                    }
                    _ => continue,
                };
                let labels = match &kind {
                    ColumnKind::Enum { values } | ColumnKind::Set { values } => values.clone(),
                    _ => unreachable!(),
                };
                let col = ColumnDecoding {
                    kind,
                    charset: None,
                    fixed_binary_len: None,
                };
                let text =
                    String::from_utf8(text_bytes(&col, v).expect("decodes").unwrap_or_default())
                        .unwrap();
                for part in text.split(',').filter(|p| !p.is_empty()) {
                    assert!(
                        labels.iter().any(|l| l == part),
                        "{part:?} is one of {labels:?}"
                    );
                }
                mapped += 1;
            }
        }
    });
    assert!(mapped > 0, "ENUM/SET values found and mapped to labels");
}

/// Decodings for every column of a table map, from the binlog's types alone (the recorded
/// files come without their servers' information_schema); integers read as `unsigned`.
fn decodings_from_types(tme: &TableMapEvent<'_>, unsigned: bool) -> Vec<ColumnDecoding> {
    use mysql_common::constants::ColumnType::*;
    use tap_mysql::testing::IntWidth;
    let labels: Vec<String> = (1..=300).map(|i| format!("label{i}")).collect();
    (0..tme.columns_count() as usize)
        .map(|i| {
            let meta = tme.get_column_metadata(i).unwrap_or(&[]);
            let m0 = meta.first().copied().unwrap_or(0) as u32;
            let int = |width| ColumnKind::Integer { width, unsigned };
            let kind = match tme.get_column_type(i).ok().flatten() {
                Some(MYSQL_TYPE_TINY) => int(IntWidth::Tiny),
                Some(MYSQL_TYPE_SHORT) => int(IntWidth::Small),
                Some(MYSQL_TYPE_INT24) => int(IntWidth::Medium),
                Some(MYSQL_TYPE_LONG) => int(IntWidth::Int),
                Some(MYSQL_TYPE_LONGLONG) => int(IntWidth::Big),
                Some(MYSQL_TYPE_YEAR) => ColumnKind::Year,
                Some(MYSQL_TYPE_NEWDECIMAL) => ColumnKind::Decimal {
                    precision: m0,
                    scale: meta.get(1).copied().unwrap_or(0) as u32,
                },
                Some(MYSQL_TYPE_FLOAT) => ColumnKind::Float,
                Some(MYSQL_TYPE_DOUBLE) => ColumnKind::Double,
                Some(MYSQL_TYPE_NEWDATE | MYSQL_TYPE_DATE) => ColumnKind::Date,
                Some(MYSQL_TYPE_DATETIME2 | MYSQL_TYPE_DATETIME) => {
                    ColumnKind::DateTime { fsp: m0.min(6) }
                }
                Some(MYSQL_TYPE_TIMESTAMP2 | MYSQL_TYPE_TIMESTAMP) => {
                    ColumnKind::Timestamp { fsp: m0.min(6) }
                }
                Some(MYSQL_TYPE_TIME2 | MYSQL_TYPE_TIME) => ColumnKind::Time { fsp: m0.min(6) },
                Some(MYSQL_TYPE_ENUM) => ColumnKind::Enum {
                    values: labels.clone(),
                },
                Some(MYSQL_TYPE_SET) => ColumnKind::Set {
                    values: labels[..64].to_vec(),
                },
                Some(MYSQL_TYPE_BIT) => ColumnKind::Bit { bits: 64 },
                Some(MYSQL_TYPE_JSON) => ColumnKind::Json,
                Some(MYSQL_TYPE_GEOMETRY | MYSQL_TYPE_VECTOR) => ColumnKind::Binary,
                _ => ColumnKind::Text { max_chars: None },
            };
            ColumnDecoding {
                kind,
                charset: None,
                fixed_binary_len: None,
            }
        })
        .collect()
}

/// Every rows event of every recorded MySQL binlog through the tap's row decoder and through
/// the driver's: the same text for every value (or both refuse the event).
#[test]
fn every_recorded_rows_event_decodes_as_the_driver_does() {
    let names = [
        "binlog-invisible-columns.000001",
        "binlog_transaction.000001",
        "binlog_transaction_with_GTID.000001",
        "binlog_transaction_with_GTID_TAG.000001",
        "binlog_transaction_with_anonymous_GTID.000001",
        "json-opaque.binlog",
        "json.binlog.000001",
        "mariadb-bin.000001",
        "minimal_row_metadata.000001",
        "mysql-enum-string-set.000001",
        "mysql_type_bit.000001",
        "rpl_cross_version_default_utf8mb4_collation.000001",
        "time_issue.000001",
        "update-full-row.binlog",
        "update-partial-row.binlog",
        "vector.binlog",
        "write-full-row.binlog",
        "write-partial-row.binlog",
    ];
    let (mut same, mut refused) = (0usize, 0usize);
    for name in names {
        let Some(evs) = events(name) else { return };
        each_rows_event(evs, |rows, tme| {
            for unsigned in [false, true] {
                let dec = decodings_from_types(tme, unsigned);
                let want = crate::cdc_decoder::oracle_texts(tme, rows, &dec);
                let got = tap_mysql::testing::event_texts(tme, rows, &dec);
                match want {
                    Ok(want) => {
                        assert_eq!(got, Ok(want), "{name}: table {}", tme.table_name());
                        same += 1;
                    }
                    Err(e) => {
                        assert!(
                            got.is_err(),
                            "{name}: the driver refuses ({e}), the tap decodes {got:?}"
                        );
                        refused += 1;
                    }
                }
            }
        });
    }
    assert!(
        same >= 40,
        "{same} rows events compared, {refused} refused by both"
    );
}
