//! Bad input gets one clear line on stderr and a non-zero exit, never a panic.

use crate::support::*;
use mysql::prelude::Queryable;
use serde_json::json;

/// Asserts the run failed with `code`, printed exactly one ERROR line containing `needle`,
/// did not panic, printed nothing on stdout and never printed the password.
fn assert_clean_failure(out: &std::process::Output, code: i32, needle: &str) -> String {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(code), "exit code; stderr: {err}");
    assert!(!err.contains("panicked"), "panic: {err}");
    assert!(!err.contains("RUST_BACKTRACE"), "backtrace hint: {err}");
    assert!(
        out.stdout.is_empty(),
        "stdout must stay empty: {}",
        stdout_of(out)
    );
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "exactly one error line: {err}");
    assert!(
        errors[0].contains(needle),
        "error line should mention {needle:?}: {err}"
    );
    assert!(!err.contains(PASSWORD), "password leaked: {err}");
    errors[0].to_string()
}

#[test]
fn missing_config_file() {
    let out = run_tap(
        &["--config", "/nonexistent/dir/config.json", "--discover"],
        &[],
    );
    assert_clean_failure(
        &out,
        2,
        "cannot read config file /nonexistent/dir/config.json",
    );
}

#[test]
fn unreadable_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_str().unwrap().to_string();
    let out = run_tap(&["--config", &path, "--discover"], &[]);
    assert_clean_failure(&out, 2, "cannot read config file");
}

#[test]
fn malformed_config_file() {
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        f.path(),
        format!("{{\"user\": \"tap\", \"password\": \"{PASSWORD}\", "),
    )
    .unwrap();
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    let line = assert_clean_failure(&out, 2, "is not valid JSON");
    assert!(line.contains("line 1"), "{line}");
}

#[test]
fn config_not_an_object() {
    let f = json_file(&json!(["user", "tap"]));
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    assert_clean_failure(&out, 2, "must hold a JSON object");
}

#[test]
fn missing_config_flag() {
    let out = run_tap(&["--discover"], &[]);
    assert_clean_failure(&out, 2, "--config FILE is required");
}

#[test]
fn invalid_port_value() {
    let mut cfg = base_config();
    cfg["port"] = json!(70000);
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    assert_clean_failure(
        &out,
        2,
        "'port' must be an integer from 1 to 65535 (got 70000)",
    );
}

#[test]
fn invalid_env_value_names_the_key() {
    let f = json_file(&base_config());
    let out = run_tap(
        &["--config", f.path().to_str().unwrap(), "--discover"],
        &[("TAP_MYSQL_SSL", "perhaps")],
    );
    assert_clean_failure(&out, 2, "'ssl' must be true or false");
}

#[test]
fn wrong_password() {
    let mut cfg = base_config();
    cfg["password"] = json!("definitely-wrong-pw");
    cfg["connect_retries"] = json!(5); // must not be retried: the run fails at once
    let f = json_file(&cfg);
    let started = std::time::Instant::now();
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    let line = assert_clean_failure(&out, 1, "Access denied for user 'tap'");
    assert!(
        line.contains(&format!("127.0.0.1:{}", server().port)),
        "{line}"
    );
    assert!(!stderr_of(&out).contains("definitely-wrong-pw"));
    assert!(
        !stderr_of(&out).contains("retrying"),
        "access denied is not retried"
    );
    assert!(started.elapsed().as_secs() < 5);
}

#[test]
fn password_from_environment_overrides_file() {
    let mut cfg = base_config();
    cfg["password"] = json!("wrong-in-file");
    cfg["filter_dbs"] = json!("no_such_db_here");
    let f = json_file(&cfg);
    let out = run_tap(
        &["--config", f.path().to_str().unwrap(), "--discover"],
        &[("TAP_MYSQL_PASSWORD", PASSWORD)],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let catalog: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(catalog, json!({"streams": []}));
    assert!(stderr_of(&out).contains("database 'no_such_db_here' has no tables"));
}

#[test]
fn unreachable_host() {
    let mut cfg = base_config();
    cfg["host"] = json!("db.nonexistent.invalid");
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    assert_clean_failure(&out, 1, "cannot connect to db.nonexistent.invalid:");
}

#[test]
fn closed_port_is_retried_then_fails() {
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cfg = base_config();
    cfg["port"] = json!(port);
    cfg["connect_retries"] = json!(1);
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    let line = assert_clean_failure(&out, 1, &format!("cannot connect to 127.0.0.1:{port}"));
    assert!(line.to_lowercase().contains("refused"), "{line}");
    let err = stderr_of(&out);
    assert_eq!(err.matches("retrying in").count(), 1, "one retry: {err}");
}

#[test]
fn tls_required_but_not_offered() {
    // The private test server runs without TLS certificates.
    let mut cfg = base_config();
    cfg["ssl"] = json!("true");
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    assert_clean_failure(&out, 1, "server does not offer TLS");
}

#[test]
fn unknown_flag_is_a_usage_error() {
    let out = run_tap(&["--no-such-flag"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!stderr_of(&out).contains("panicked"));
}

#[test]
fn unknown_config_key_is_a_warning() {
    let mut cfg = base_config();
    cfg["no_such_setting"] = json!(1);
    cfg["filter_dbs"] = json!(["no_such_db_here"]);
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(stderr_of(&out).contains("WARNING config: ignoring unknown key 'no_such_setting'"));
}

#[test]
fn about_json_lists_capabilities_and_settings() {
    let out = run_tap(&["--about", "--format", "json"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let about: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(about["name"], "tap-mysql");
    assert_eq!(about["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(
        about["capabilities"],
        json!([
            "catalog",
            "discover",
            "state",
            "properties",
            "about",
            "batch",
            "activate-version",
            "log-based",
            "test"
        ])
    );
    assert_eq!(about["settings"]["properties"]["port"]["default"], 3306);
    assert_eq!(about["settings"]["properties"]["password"]["secret"], true);
}

#[test]
fn about_markdown_has_a_settings_table() {
    let out = run_tap(&["--about", "--format", "markdown"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let md = stdout_of(&out);
    assert!(md.contains("| Setting | Required | Type | Default | Description |"));
    assert!(md.contains("| `port` |  | integer | `3306` |"), "{md}");
}

#[test]
fn version_flag() {
    let out = run_tap(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        stdout_of(&out).trim(),
        format!("tap-mysql {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn readme_config_reference_matches_the_schema() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find("<!-- settings:start -->\n")
        .expect("settings start marker")
        + 24;
    let end = readme
        .find("<!-- settings:end -->")
        .expect("settings end marker");
    let schema: serde_json::Value =
        serde_json::from_str(tap_mysql::testing::CONFIG_SCHEMA).unwrap();
    assert_eq!(
        &readme[start..end],
        tap_mysql::testing::settings_table(&schema),
        "README settings table is stale: run scripts/update-readme-settings"
    );
}

#[test]
fn progress_metrics_json_logs_and_quiet() {
    use mysql::prelude::Queryable;
    let db = fresh_db("progress");
    db_conn(&db)
        .query_drop(
            "CREATE TABLE t (id int primary key); INSERT INTO t SELECT seq FROM seq_1_to_3000",
        )
        .unwrap();
    let mut cfg = config_for(&db);
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap()], &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let id = format!("{db}-t");
    assert!(
        err.contains(&format!(
            "stream '{id}': starting FULL_TABLE sync of 1 columns"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("stream '{id}': done, 3000 rows in")),
        "{err}"
    );
    let metric = format!(
        r#"METRIC: {{"type":"counter","metric":"record_count","value":3000,"tags":{{"endpoint":"{id}"}}}}"#
    );
    assert!(err.contains(&metric), "{err}");
    assert!(err.contains(r#""metric":"job_duration""#), "{err}");
    // JSON log lines, one object each.
    cfg["log_format"] = json!("json");
    let f = json_file(&cfg);
    let out = run_tap(&["--config", f.path().to_str().unwrap()], &[]);
    for line in stderr_of(&out).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}"));
        assert!(
            v["time"].is_string() && v["level"].is_string() && v["message"].is_string(),
            "{v}"
        );
    }
    // --quiet: nothing below WARNING.
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--quiet"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stderr_of(&out).is_empty(), "{}", stderr_of(&out));
}

#[test]
fn command_line_mistakes_are_one_line() {
    for (args, needle) in [
        (
            &["--bogus"][..],
            "unexpected argument '--bogus' found (see --help)",
        ),
        (
            &["--about", "--format", "yaml"][..],
            "invalid value 'yaml' for '--format <FORMAT>'",
        ),
        (
            &["--catalog"][..],
            "a value is required for '--catalog <FILE>'",
        ),
    ] {
        let out = run_tap(args, &[]);
        assert_clean_failure(&out, 2, needle);
        assert_eq!(
            stderr_of(&out).lines().count(),
            1,
            "{args:?}: {}",
            stderr_of(&out)
        );
    }
    // --help and --version still print as usual.
    let help = run_tap(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(stdout_of(&help).contains("--config <FILE>"));
}

#[test]
fn every_setting_from_environment_variables_without_a_config_file() {
    // A table of its own, so discovery has something to find when this test runs alone.
    let db = fresh_db("env_only");
    db_conn(&db)
        .query_drop("CREATE TABLE t (id int primary key)")
        .unwrap();
    let mut cfg = base_config();
    cfg["filter_dbs"] = json!(db);
    let vars: Vec<(String, String)> = cfg
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            (format!("TAP_MYSQL_{}", k.to_ascii_uppercase()), text)
        })
        .collect();
    let env: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run_tap(&["--discover"], &env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    let catalog: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = catalog["streams"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["tap_stream_id"].as_str())
        .collect();
    assert_eq!(ids, [format!("{db}-t")]);
    // Without --config and without any variable: the clear line.
    assert_clean_failure(
        &run_tap(&["--discover"], &[]),
        2,
        "--config FILE is required",
    );
}
