//! BATCH messages: Parquet and JSONL files, exact types, nothing lost.

use std::collections::HashSet;

use std::io::Read;

use arrow_array::cast::AsArray;
use arrow_array::types::*;
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, TimeUnit};
use base64::Engine as _;
use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::*;

fn fixture() -> &'static str {
    static DB: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DB.get_or_init(|| {
        let db = named_db("tap_batch_fixture");
        load_fixture(&db, "types.sql");
        db
    })
}

fn batch_config(
    db: &str,
    root: &std::path::Path,
    format: &str,
    compression: &str,
    size: u64,
) -> Value {
    let mut cfg = config_for(db);
    cfg["max_parallel_streams"] = json!(1);
    cfg["batch_config"] = json!({
        "encoding": {"format": format, "compression": compression},
        "storage": {"root": format!("file://{}", root.display()), "prefix": "t-"},
        "batch_size": size,
    });
    cfg
}

fn all_types_catalog(db: &str) -> Value {
    let cfg = config_for(db);
    let mut catalog = discover(&cfg);
    only_streams(&mut catalog, &[&format!("{db}-all_types")]);
    select_all(&mut catalog, &[]);
    catalog
}

/// The files named by BATCH messages, checking each message's shape.
fn manifest_files(run: &Run, format: &str, compression: &str) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let mut schemas = HashSet::new();
    for m in &run.messages {
        match m["type"].as_str().unwrap() {
            "SCHEMA" => {
                schemas.insert(m["stream"].as_str().unwrap().to_string());
            }
            "RECORD" => panic!("no RECORD messages in BATCH mode"),
            // SDK targets load BATCH rows without a version: ACTIVATE_VERSION would delete them.
            "ACTIVATE_VERSION" => panic!("no ACTIVATE_VERSION in BATCH mode"),
            "BATCH" => {
                assert!(
                    schemas.contains(m["stream"].as_str().unwrap()),
                    "BATCH after SCHEMA"
                );
                assert_eq!(
                    m["encoding"],
                    json!({"format": format, "compression": compression})
                );
                for url in m["manifest"].as_array().unwrap() {
                    let path = url
                        .as_str()
                        .unwrap()
                        .strip_prefix("file:///")
                        .expect("absolute file URL");
                    let p = std::path::PathBuf::from(format!("/{path}"));
                    assert!(p.is_file(), "{p:?}");
                    files.push(p);
                }
            }
            _ => {}
        }
    }
    files
}

fn micros_to_text(us: i64) -> String {
    let secs = us.div_euclid(1_000_000);
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(0);
    let _ = t;
    let (y, m, d) = tap_mysql::testing::civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:06}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        us.rem_euclid(1_000_000)
    )
}

/// Asserts the Arrow value at `row` equals the RECORD path's raw JSON `token`.
fn assert_same(col: &str, array: &dyn Array, row: usize, token: &str) {
    if array.is_null(row) {
        assert_eq!(token, "null", "{col} row {row}");
        return;
    }
    let ctx = format!("{col} row {row}: RECORD {token}");
    match array.data_type() {
        DataType::Boolean => assert_eq!(array.as_boolean().value(row).to_string(), token, "{ctx}"),
        DataType::Int8 => assert_eq!(
            array.as_primitive::<Int8Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::Int16 => assert_eq!(
            array.as_primitive::<Int16Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::Int32 => assert_eq!(
            array.as_primitive::<Int32Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::Int64 => assert_eq!(
            array.as_primitive::<Int64Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::UInt8 => assert_eq!(
            array.as_primitive::<UInt8Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::UInt16 => assert_eq!(
            array.as_primitive::<UInt16Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::UInt32 => assert_eq!(
            array.as_primitive::<UInt32Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::UInt64 => assert_eq!(
            array.as_primitive::<UInt64Type>().value(row).to_string(),
            token,
            "{ctx}"
        ),
        DataType::Decimal128(..) => {
            assert_eq!(
                array.as_primitive::<Decimal128Type>().value_as_string(row),
                token,
                "{ctx}"
            )
        }
        DataType::Decimal256(..) => {
            assert_eq!(
                array.as_primitive::<Decimal256Type>().value_as_string(row),
                token,
                "{ctx}"
            )
        }
        DataType::Float32 => {
            assert_eq!(
                array.as_primitive::<Float32Type>().value(row),
                token.parse::<f32>().unwrap(),
                "{ctx}"
            )
        }
        DataType::Float64 => {
            assert_eq!(
                array.as_primitive::<Float64Type>().value(row),
                token.parse::<f64>().unwrap(),
                "{ctx}"
            )
        }
        DataType::Date32 => {
            let days = array.as_primitive::<Date32Type>().value(row) as i64;
            let (y, m, d) = tap_mysql::testing::civil_from_days(days);
            assert_eq!(format!("\"{y:04}-{m:02}-{d:02}\""), token, "{ctx}");
        }
        DataType::Timestamp(TimeUnit::Microsecond, Some(tz)) => {
            assert_eq!(tz.as_ref(), "UTC");
            let got = micros_to_text(array.as_primitive::<TimestampMicrosecondType>().value(row));
            let s: String = serde_json::from_str(token).unwrap();
            let s = s.strip_suffix("+00:00").unwrap();
            let (base, frac) = s.split_once('.').unwrap_or((s, ""));
            assert_eq!(got, format!("{base}.{frac:0<6}"), "{ctx}");
        }
        DataType::Binary => {
            let b64 = base64::engine::general_purpose::STANDARD
                .encode(array.as_binary::<i32>().value(row));
            assert_eq!(json!(b64).to_string(), token, "{ctx}");
        }
        DataType::Utf8 => {
            let text = array.as_string::<i32>().value(row);
            let expected: Value = serde_json::from_str(token).unwrap();
            match &expected {
                Value::String(s) if s == text => {}
                // JSON and GeoJSON columns: the file holds the document's text.
                other => assert_eq!(
                    &serde_json::from_str::<Value>(text).unwrap(),
                    other,
                    "{ctx}"
                ),
            }
        }
        other => panic!("{ctx}: unexpected type {other:?}"),
    }
}

fn read_parquet(files: &[std::path::PathBuf]) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for f in files {
        let file = std::fs::File::open(f).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            out.push(b.unwrap());
        }
    }
    out
}

#[test]
fn parquet_columns_have_declared_types_and_record_values() {
    let db = fixture();
    let catalog = all_types_catalog(db);
    let plain = config_for(db);
    let records = sync(&plain, Some(&catalog), None);
    let record_rows = records.raw_records();
    assert_eq!(record_rows.len(), 7);

    let dir = tempfile::tempdir().unwrap();
    let run = sync(
        &batch_config(db, &dir.path().join("new/sub"), "parquet", "zstd", 3),
        Some(&catalog),
        None,
    );
    let files = manifest_files(&run, "parquet", "zstd");
    assert_eq!(files.len(), 3, "7 rows in files of 3");
    let batches = read_parquet(&files);
    let schema = batches[0].schema();
    let ty = |c: &str| schema.field_with_name(c).unwrap().data_type().clone();
    let ts = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    for (col, expected) in [
        ("id", DataType::Int32),
        ("c_tinyint1", DataType::Boolean),
        ("c_tinyint", DataType::Int8),
        ("c_tinyint_unsigned", DataType::UInt8),
        ("c_smallint_unsigned", DataType::UInt16),
        ("c_mediumint", DataType::Int32),
        ("c_int_unsigned", DataType::UInt32),
        ("c_bigint", DataType::Int64),
        ("c_bigint_unsigned", DataType::UInt64),
        ("c_decimal_10_2", DataType::Decimal128(10, 2)),
        ("c_decimal_65_30", DataType::Decimal256(65, 30)),
        ("c_decimal_5_0_unsigned", DataType::Decimal128(5, 0)),
        ("c_float", DataType::Float32),
        ("c_double", DataType::Float64),
        ("c_bit1", DataType::Boolean),
        ("c_bit64", DataType::UInt64),
        ("c_year", DataType::Int16),
        ("c_date", DataType::Date32),
        ("c_datetime6", ts.clone()),
        ("c_timestamp3", ts),
        ("c_time6", DataType::Utf8),
        ("c_varchar255", DataType::Utf8),
        ("c_enum", DataType::Utf8),
        ("c_binary4", DataType::Binary),
        ("c_longblob", DataType::Binary),
        ("c_json", DataType::Utf8),
        ("c_point", DataType::Utf8),
        ("c_uuid", DataType::Utf8),
    ] {
        assert_eq!(ty(col), expected, "{col}");
    }
    assert_eq!(
        schema.fields().len(),
        record_rows[0].len(),
        "only the selected columns"
    );
    let mut row_index = 0;
    for batch in &batches {
        for r in 0..batch.num_rows() {
            let expected = &record_rows[row_index];
            for (i, field) in batch.schema().fields().iter().enumerate() {
                assert_same(
                    field.name(),
                    batch.column(i).as_ref(),
                    r,
                    &expected[field.name()],
                );
            }
            row_index += 1;
        }
    }
    assert_eq!(row_index, 7);
    // Zero dates are null and counted, as on the RECORD path.
    assert!(
        run.stderr
            .contains("column 'c_date': 2 zero or invalid dates emitted as null"),
        "{}",
        run.stderr
    );
    let state = run.last_state();
    assert_eq!(
        state["bookmarks"][&format!("{db}-all_types")]["initial_full_table_complete"],
        true
    );
}

#[test]
fn jsonl_files_hold_the_record_values() {
    let db = fixture();
    let catalog = all_types_catalog(db);
    let plain = config_for(db);
    let record_run = sync(&plain, Some(&catalog), None);
    let records = record_run.record_texts();
    for compression in ["none", "gzip"] {
        let dir = tempfile::tempdir().unwrap();
        let run = sync(
            &batch_config(db, dir.path(), "jsonl", compression, 5),
            Some(&catalog),
            None,
        );
        let files = manifest_files(&run, "jsonl", compression);
        assert_eq!(files.len(), 2);
        let mut lines = Vec::new();
        for f in &files {
            let raw = std::fs::read(f).unwrap();
            let text = if compression == "gzip" {
                assert!(f.to_string_lossy().ends_with(".jsonl.gz"));
                let mut s = String::new();
                flate2::read::GzDecoder::new(&raw[..])
                    .read_to_string(&mut s)
                    .unwrap();
                s
            } else {
                assert_eq!(raw[0], b'{', "plain JSONL, not gzip");
                String::from_utf8(raw).unwrap()
            };
            lines.extend(text.lines().map(str::to_string));
        }
        assert_eq!(
            lines, records,
            "{compression}: bare records, same values as RECORD messages"
        );
    }
}

#[test]
fn state_never_covers_rows_of_an_unfinished_file() {
    let db = fresh_db("batch_resume");
    let n = 150_000;
    db_conn(&db)
        .query_drop(format!(
            "CREATE TABLE t (id int primary key, v varchar(30)); INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_{n}"
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = batch_config(&db, dir.path(), "jsonl", "none", 500);
    let id = format!("{db}-t");
    let first = run_and_kill_after(&cfg, None, None, 120);
    // Walk the messages: every STATE covers only rows of files announced before it.
    let mut announced: Vec<std::path::PathBuf> = Vec::new();
    let mut states = 0;
    for m in &first.messages {
        if m["type"] == "BATCH" {
            announced.push(std::path::PathBuf::from(
                m["manifest"][0]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("file://"),
            ));
        }
        if let Some(last) = m.pointer(&format!(
            "/value/bookmarks/{}/last_pk_fetched/id",
            id.replace('/', "~1")
        )) {
            let covered = jsonl_ids(&announced).into_iter().max().unwrap_or(0);
            assert!(
                last.as_i64().unwrap() <= covered,
                "STATE at {last} but files only hold up to {covered}"
            );
            states += 1;
        }
    }
    assert!(states > 5, "{states} bookmarks before the interruption");
    let state = first.last_state();
    assert!(
        state["bookmarks"][&id].get("last_pk_fetched").is_some(),
        "interrupted mid-table"
    );

    let second = sync(&cfg, None, Some(&state));
    let later = manifest_files(&second, "jsonl", "none");
    let mut all: HashSet<i64> = jsonl_ids(&announced).into_iter().collect();
    all.extend(jsonl_ids(&later));
    assert_eq!(
        all.len(),
        n,
        "every row is in a finished file after resuming"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".partial"))
        .collect();
    assert!(
        leftovers.is_empty(),
        "the interrupted run's partial file was discarded: {leftovers:?}"
    );
}

/// Runs the tap without reading its stdout until it is blocked on the full pipe (its writer
/// waits, finished files wait for their BATCH message), SIGKILLs it and returns the complete
/// lines it had written.
fn kill_when_blocked(cfg: &Value, dir: &std::path::Path) -> Run {
    use std::process::{Command, Stdio};
    let _running = long_query();
    let cfg_file = json_file(cfg);
    let mut child = Command::new(tap_bin())
        .args(["--config", cfg_file.path().to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until_stalled(child.id(), dir);
    child.kill().unwrap();
    let mut text = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    child.wait().unwrap();
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    parse_run(text.as_bytes(), String::new(), None)
}

fn file_names(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn gz_ids(files: &[std::path::PathBuf]) -> Vec<i64> {
    let mut ids = Vec::new();
    for f in files {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(f).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        ids.extend(text.lines().map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_i64()
                .unwrap()
        }));
    }
    ids
}

#[test]
fn a_killed_run_leaves_no_finished_file_without_its_marker_and_the_next_run_removes_it() {
    let db = fresh_db("batch_kill");
    let n = 100_000;
    db_conn(&db)
        .query_drop(format!(
            "CREATE TABLE t (id int primary key, v varchar(30)); INSERT INTO t SELECT seq, CONCAT('v', seq) FROM seq_1_to_{n}"
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cfg = batch_config(&db, dir.path(), "jsonl", "gzip", 200);
    let first = kill_when_blocked(&cfg, dir.path());
    let first_files = manifest_files(&first, "jsonl", "gzip");
    let announced: Vec<String> = first_files
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let left = file_names(dir.path());
    let stem = format!("t-{db}-t-");
    let leftover = |name: &str, suffix: &str| {
        let body = name.strip_prefix(&stem)?.strip_suffix(suffix)?;
        let numbers = body.strip_suffix(".jsonl.gz")?;
        let groups: Vec<&str> = numbers.split('-').collect();
        let shaped = groups.len() == 4 && groups.iter().all(|g| g.parse::<u64>().is_ok());
        shaped.then_some(())
    };
    let unannounced: Vec<&String> = left
        .iter()
        .filter(|f| !f.ends_with(".unsent") && !f.ends_with(".partial"))
        .filter(|f| !announced.contains(f))
        .collect();
    assert!(
        !unannounced.is_empty(),
        "the kill landed after files were finished, before their BATCH messages: {left:?}"
    );
    for f in &unannounced {
        assert!(
            left.contains(&format!("{f}.unsent")),
            "{f} is finished, never announced and not marked: {left:?}"
        );
    }
    for f in left.iter().filter(|f| !f.ends_with(".jsonl.gz")) {
        assert!(
            leftover(f, ".unsent").or(leftover(f, ".partial")).is_some(),
            "only <name>.jsonl.gz.unsent and <name>.jsonl.gz.partial beside the files: {f}"
        );
    }
    // A marked file may also have been announced (killed before its marker was removed), but
    // never covered by a STATE: the next run removes it and reads its rows again.
    let state = first.last_state();
    let covered = state["bookmarks"][&format!("{db}-t")]["last_pk_fetched"]["id"]
        .as_i64()
        .unwrap_or(0);
    let marked_announced: Vec<std::path::PathBuf> = first_files
        .iter()
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            left.contains(&format!("{name}.unsent"))
        })
        .cloned()
        .collect();
    for f in &marked_announced {
        let ids = gz_ids(std::slice::from_ref(f));
        assert!(
            ids.iter().all(|&id| id > covered),
            "{f:?} is marked but the STATE covers its rows (up to {covered})"
        );
    }

    let second = sync(&cfg, None, Some(&state));
    assert!(
        second
            .stderr
            .contains("an interrupted run finished it but no STATE covers it"),
        "{}",
        second.stderr
    );
    let later = manifest_files(&second, "jsonl", "gzip");
    let mut expected: Vec<String> = announced
        .iter()
        .filter(|f| !left.contains(&format!("{f}.unsent")))
        .cloned()
        .collect();
    expected.extend(
        later
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned()),
    );
    expected.sort();
    assert_eq!(
        file_names(dir.path()),
        expected,
        "only announced files are left"
    );
    let kept: Vec<std::path::PathBuf> = first_files
        .into_iter()
        .filter(|p| !marked_announced.contains(p))
        .collect();
    let mut all: HashSet<i64> = gz_ids(&kept).into_iter().collect();
    all.extend(gz_ids(&later));
    assert_eq!(
        all.len(),
        n,
        "every row is in an announced file that is kept"
    );
}

#[test]
fn unwritable_storage_root_fails_before_any_query() {
    let db = fixture();
    let cfg = batch_config(
        db,
        std::path::Path::new("/proc/tap-mysql-cannot-write-here"),
        "parquet",
        "snappy",
        10,
    );
    let run = sync_any(&cfg, None, None);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "batch_config.storage.root /proc/tap-mysql-cannot-write-here cannot be created"
        ),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("connected to"),
        "no connection was made: {}",
        run.stderr
    );
    assert!(run.messages.is_empty());
}
