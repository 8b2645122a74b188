//! `--test` (the Meltano SDK's connection test) and what `meltano config <tap> test` needs: it
//! runs a plain sync, stops the tap with SIGTERM at the first RECORD and passes only when the
//! tap then ends by that signal.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};

use mysql::prelude::Queryable;
use serde_json::json;

use crate::support::*;

fn types_of(run: &Run) -> Vec<String> {
    run.messages
        .iter()
        .map(|m| m["type"].as_str().unwrap_or("").to_string())
        .collect()
}

fn test_run(args: &[&str]) -> Run {
    let out = run_tap(args, &[]);
    parse_run(&out.stdout, stderr_of(&out), out.status.code())
}

#[test]
fn test_reads_one_record_per_stream_and_writes_no_state() {
    let db = fixture_db("demo.sql");
    db_conn(&db)
        .query_drop("CREATE TABLE empty_t (id int primary key)")
        .unwrap();
    let files = TapFiles::new(&config_for(&db), None, None);
    let mut args = files.args();
    args.push("--test");
    let run = test_run(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let types = types_of(&run);
    assert_eq!(
        types.iter().filter(|t| *t == "SCHEMA").count(),
        4,
        "{types:?}"
    );
    assert_eq!(
        types.iter().filter(|t| *t == "RECORD").count(),
        3,
        "{types:?}"
    );
    assert_eq!(types.len(), 7, "no STATE, no ACTIVATE_VERSION: {types:?}");
    // Each stream's SCHEMA comes before its record; records are as a sync writes them.
    let orders = run.records(&format!("{db}-orders"));
    assert_eq!(orders.len(), 1);
    assert!(orders[0]["id"].is_u64(), "{}", orders[0]);
    assert!(run.stderr.contains("test: passed"), "{}", run.stderr);
}

#[test]
fn test_schema_writes_schemas_only_and_follows_the_catalog() {
    let db = fixture_db("demo.sql");
    let cfg = config_for(&db);
    let mut catalog = discover(&cfg);
    let orders = format!("{db}-orders");
    select_all(
        &mut catalog,
        &[(&orders, "INCREMENTAL", Some("updated_at"))],
    );
    only_streams(&mut catalog, &[&orders]);
    let files = TapFiles::new(&cfg, Some(&catalog), Some(&json!({"bookmarks": {}})));
    let mut args = files.args();
    args.push("--test=schema");
    let run = test_run(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(types_of(&run), ["SCHEMA"]);
    assert_eq!(run.messages[0]["stream"], orders.as_str());
    assert_eq!(
        run.messages[0]["bookmark_properties"],
        json!(["updated_at"])
    );

    let mut args = files.args();
    args.push("--test=all");
    let run = test_run(&args);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(types_of(&run), ["SCHEMA", "RECORD"]);
}

#[test]
fn a_failing_test_is_one_error_line_and_exit_1() {
    let mut cfg = base_config();
    cfg["password"] = json!("not-the-password");
    let files = TapFiles::new(&cfg, None, None);
    let mut args = files.args();
    args.push("--test");
    let run = test_run(&args);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.messages.is_empty());
    let errors: Vec<&str> = run.stderr.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "{}", run.stderr);
    assert!(errors[0].contains("denied"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password"));

    let out = run_tap(&["--test=bogus", "--config", "x.json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
    let out = run_tap(&["--test", "--discover", "--config", "x.json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr_of(&out));
}

/// `meltano config tap-mysql test`: a plain sync stopped by SIGTERM at the first RECORD must
/// end killed by SIGTERM (Meltano checks `abs(returncode) == 15`), after its clean stop.
#[test]
fn sigterm_at_the_first_record_ends_the_tap_by_the_signal() {
    let db = fresh_db("meltano_test");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE big (id int primary key, pad varchar(300))")
        .unwrap();
    c.query_drop("INSERT INTO big SELECT seq, REPEAT('x', 300) FROM seq_1_to_30000")
        .unwrap();
    let files = TapFiles::new(&config_for(&db), None, None);
    let mut child = Command::new(tap_bin())
        .args(files.args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr_pipe = child.stderr.take().unwrap();
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let mut reader = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        if line.contains(r#""type":"RECORD""#) {
            break;
        }
        line.clear();
    }
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let mut rest = String::new();
    reader.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let stderr = stderr.join().unwrap();
    assert_eq!(status.signal(), Some(15), "{status:?} {stderr}");
    assert!(stderr.contains("stopped by SIGTERM"), "{stderr}");
    assert!(rest.trim_end().ends_with('}'), "complete lines only");
}
