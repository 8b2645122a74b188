//! Test harness: a private MariaDB server for the whole test process, plus helpers.
//!
//! The server is `mariadbd` (from PATH or /usr/sbin) in a temp dir on a free port, with
//! binlog on (ROW, FULL image, FULL metadata), GTIDs, and a fixed server_id, started by the
//! project's one launcher, `scripts/lib/private-mariadb.sh` (which holds the server flags). It is
//! started once per test process and removed when the process exits (the launcher's watchdog
//! kills it and deletes the directory as soon as the test process is gone, however it ended).
//!
//! Tests create their own database with [`fresh_db`] and never share tables.
#![allow(dead_code)]

pub mod sshd;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;
use mysql::{Conn, OptsBuilder};

/// The test user the tap logs in with (password auth over TCP).
pub const USER: &str = "tap";
/// Its password; tests check that it never appears in output.
pub const PASSWORD: &str = "tap-Secret-pw-91";

/// A running private server.
pub struct Server {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    /// Unix socket path.
    pub socket: PathBuf,
    /// Data directory root (temp).
    pub dir: PathBuf,
    /// The server's process id.
    pub pid: u32,
    /// Its error log.
    pub error_log: PathBuf,
}

static SERVER: OnceLock<Result<Server, String>> = OnceLock::new();
static DB_COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The shared server, started on first use. Panics with a clear message when it cannot start.
pub fn server() -> &'static Server {
    match SERVER.get_or_init(start) {
        Ok(s) => s,
        Err(e) => panic!("test MariaDB server unavailable: {e}"),
    }
}

fn start() -> Result<Server, String> {
    let server = start_with(&[])?;
    report_a_dead_server_on_panic();
    Ok(server)
}

/// How many panics have reported the shared server's death in full.
static DEATH_REPORTS: AtomicUsize = AtomicUsize::new(0);

/// Adds to every panic, once the shared server has died, that it died and how its error log
/// ends: otherwise a crash of the server reads as dozens of unrelated test failures.
fn report_a_dead_server_on_panic() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default(info);
        if let Some(Ok(s)) = SERVER.get() {
            if !s.alive() {
                if DEATH_REPORTS.fetch_add(1, Ordering::SeqCst) < 2 {
                    eprintln!("{}", s.death_report());
                } else {
                    eprintln!(
                        "the shared test server (pid {}) is gone: see the first failure's report",
                        s.pid
                    );
                }
            }
        }
    }));
}

/// A process's state letter and parent, from `/proc/PID/stat`; `None` once it is gone.
pub struct ProcStat {
    pub state: String,
    pub ppid: u32,
}

/// Reads `/proc/PID/stat`: "pid (comm) state ppid ...", where the comm may hold spaces and
/// parentheses, so the fields are read after the last ')'.
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.to_string();
    let ppid = fields.next()?.parse().ok()?;
    Some(ProcStat { state, ppid })
}

impl Server {
    /// Whether the server process still runs (it is not our child: /proc tells; a zombie is
    /// dead too).
    pub fn alive(&self) -> bool {
        proc_stat(self.pid).is_some_and(|s| s.state != "Z")
    }

    /// That the server is gone, and the last 40 lines of its error log.
    pub fn death_report(&self) -> String {
        let log = std::fs::read_to_string(&self.error_log)
            .unwrap_or_else(|e| format!("(unreadable: {e})"));
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!(
            "THE TEST SERVER (pid {}, {}) IS GONE; the end of its error log {}:\n{tail}",
            self.pid,
            self.dir.display(),
            self.error_log.display()
        )
    }
}

/// The project's one server launcher; the demo and every script start their server with it too.
const LAUNCHER: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/scripts/lib/private-mariadb.sh"
);

/// Starts a private server with extra `mariadbd` options (after the launcher's own, so they win).
/// The launcher's watchdog stops the server and deletes its directory once this process is gone.
pub fn start_with(extra: &[String]) -> Result<Server, String> {
    let dir = tempfile::Builder::new()
        .prefix("tap-mysql-test-")
        .tempdir()
        .map_err(|e| format!("cannot create temp dir: {e}"))?
        .keep();
    let out = Command::new("bash")
        .arg(LAUNCHER)
        .arg("start")
        .arg("--watch")
        .arg(std::process::id().to_string())
        .arg(&dir)
        .args(extra)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {LAUNCHER}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{LAUNCHER} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let printed = String::from_utf8_lossy(&out.stdout);
    let value = |key: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
            .map(str::to_string)
            .ok_or_else(|| format!("{LAUNCHER} printed no {key}: {printed}"))
    };
    let port = value("port")?
        .parse()
        .map_err(|e| format!("{LAUNCHER} printed a bad port: {e}"))?;
    let socket = PathBuf::from(value("socket")?);
    let pid = value("pid")?
        .parse()
        .map_err(|e| format!("{LAUNCHER} printed a bad pid: {e}"))?;
    let error_log = PathBuf::from(value("error_log")?);
    let opts = OptsBuilder::new()
        .socket(Some(socket.to_string_lossy().to_string()))
        .user(Some("root"));
    let mut c = Conn::new(opts).map_err(|e| format!("cannot connect as root: {e}"))?;
    c.query_drop(format!(
        "CREATE USER IF NOT EXISTS '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'"
    ))
    .and_then(|_| {
        c.query_drop(format!(
            "GRANT ALL ON *.* TO '{USER}'@'%' WITH GRANT OPTION"
        ))
    })
    .map_err(|e| format!("cannot create the test user: {e}"))?;
    Ok(Server {
        port,
        socket,
        dir,
        pid,
        error_log,
    })
}

/// A root connection over the Unix socket.
pub fn root_conn() -> Conn {
    let s = server();
    let opts = OptsBuilder::new()
        .socket(Some(s.socket.to_string_lossy().to_string()))
        .user(Some("root"));
    Conn::new(opts).expect("root connection to the test server")
}

/// A connection to `db` as root.
pub fn db_conn(db: &str) -> Conn {
    let s = server();
    let opts = OptsBuilder::new()
        .socket(Some(s.socket.to_string_lossy().to_string()))
        .user(Some("root"))
        .db_name(Some(db));
    let mut c = Conn::new(opts).expect("connection to the test database");
    c.query_drop("SET NAMES utf8mb4").expect("set names");
    c
}

/// Creates a new empty database (utf8mb4) and returns its name.
pub fn fresh_db(hint: &str) -> String {
    let n = DB_COUNTER.fetch_add(1, Ordering::SeqCst);
    named_db(&format!("t_{hint}_{n}"))
}

/// Path of a file in the repository's fixtures/.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

/// Runs a fixture SQL file (multi-statement text) in `db`.
pub fn load_fixture(db: &str, name: &str) {
    let sql = std::fs::read_to_string(fixture_path(name)).expect("fixture file");
    let mut c = db_conn(db);
    c.query_drop(&sql)
        .unwrap_or_else(|e| panic!("loading fixture {name}: {e}"));
}

/// A database loaded with a fixture, created once per name per process.
pub fn fixture_db(name: &str) -> String {
    let db = fresh_db(name.trim_end_matches(".sql"));
    load_fixture(&db, name);
    db
}

/// Base config for the tap against the test server (TCP, password auth).
pub fn base_config() -> serde_json::Value {
    serde_json::json!({
        "host": "127.0.0.1",
        "port": server().port,
        "user": USER,
        "password": PASSWORD,
        "connect_retries": 0,
    })
}

/// Base config limited to the database `db`.
pub fn config_for(db: &str) -> serde_json::Value {
    let mut cfg = base_config();
    cfg["filter_dbs"] = serde_json::json!(db);
    cfg
}

/// A catalog of `db` selecting `tables` LOG_BASED (all supported columns but `skip_columns`).
pub fn log_based(db: &str, tables: &[&str], skip_columns: &[&str]) -> serde_json::Value {
    let mut catalog = discover(&config_for(db));
    let ids: Vec<String> = tables.iter().map(|t| format!("{db}-{t}")).collect();
    only_streams(
        &mut catalog,
        &ids.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let methods: Vec<(&str, &str, Option<&str>)> = ids
        .iter()
        .map(|i| (i.as_str(), "LOG_BASED", None))
        .collect();
    select_all(&mut catalog, &methods);
    for s in catalog["streams"].as_array_mut().unwrap() {
        for m in s["metadata"].as_array_mut().unwrap() {
            if let Some(c) = m["breadcrumb"].get(1).and_then(serde_json::Value::as_str) {
                if skip_columns.contains(&c) {
                    m["metadata"]["selected"] = serde_json::json!(false);
                }
            }
        }
    }
    catalog
}

/// CDC tests change global binlog settings and read the shared binlog: one at a time.
static CDC: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by a CDC test for its whole run.
pub fn cdc_lock() -> std::sync::MutexGuard<'static, ()> {
    CDC.lock().unwrap_or_else(|e| e.into_inner())
}

/// What a CDC test under one `binlog_row_metadata` holds: the setting (restored first when
/// dropped), then the CDC lock.
pub struct CdcCase {
    _metadata: GlobalSetting,
    _lock: std::sync::MutexGuard<'static, ()>,
}

/// The setup of a CDC test under `binlog_row_metadata = metadata`: the CDC lock, the setting,
/// and a fresh database named after `hint` and the setting.
pub fn cdc_case(hint: &str, metadata: &str) -> (CdcCase, String) {
    let lock = cdc_lock();
    let setting = set_global("binlog_row_metadata", metadata);
    let db = fresh_db(&format!("{hint}_{}", metadata.to_lowercase()));
    (
        CdcCase {
            _metadata: setting,
            _lock: lock,
        },
        db,
    )
}

/// Two tests of one CDC case: under `binlog_row_metadata = FULL` (column names in the binlog)
/// and `NO_LOG` (positions only, the column order followed through DDL).
macro_rules! under_full_and_no_log {
    ($case:ident: $full:ident, $no_log:ident) => {
        #[test]
        fn $full() {
            $case("FULL");
        }

        #[test]
        fn $no_log() {
            $case("NO_LOG");
        }
    };
}
pub(crate) use under_full_and_no_log;

/// Writes JSON to a temp file that lives as long as the returned handle.
pub fn json_file(value: &serde_json::Value) -> tempfile::NamedTempFile {
    let f = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(f.path(), serde_json::to_vec_pretty(value).expect("json")).expect("write");
    f
}

/// The tap binary under test.
pub fn tap_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tap-mysql")
}

/// Runs the tap with arguments and extra environment, returning its output.
pub fn run_tap(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(tap_bin());
    cmd.args(args).stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    // Keep the developer's own TAP_MYSQL_* settings out of tests.
    for (k, _) in std::env::vars() {
        if k.starts_with("TAP_MYSQL_") && !env.iter().any(|(e, _)| *e == k) {
            cmd.env_remove(k);
        }
    }
    cmd.output().expect("run tap-mysql")
}

/// stdout as text.
pub fn stdout_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr_of(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Creates (or recreates) the account `name`@'%' with `password` and each of `grants` (such as
/// ``SELECT ON `db`.*``).
pub fn create_user(name: &str, password: &str, grants: &[&str]) {
    let mut root = root_conn();
    root.query_drop(format!("DROP USER IF EXISTS '{name}'@'%'"))
        .expect("drop user");
    root.query_drop(format!(
        "CREATE USER '{name}'@'%' IDENTIFIED BY '{password}'"
    ))
    .expect("create user");
    for grant in grants {
        root.query_drop(format!("GRANT {grant} TO '{name}'@'%'"))
            .unwrap_or_else(|e| panic!("GRANT {grant} TO {name}: {e}"));
    }
}

/// Creates (or recreates) a database with exactly this name.
pub fn named_db(name: &str) -> String {
    let mut c = root_conn();
    c.query_drop(format!("DROP DATABASE IF EXISTS `{name}`"))
        .expect("drop db");
    c.query_drop(format!(
        "CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    ))
    .expect("create db");
    name.to_string()
}

/// Runs the tap's discovery with `config` and returns the parsed catalog.
pub fn discover(config: &serde_json::Value) -> serde_json::Value {
    let f = json_file(config);
    let out = run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "discover failed: {}",
        stderr_of(&out)
    );
    serde_json::from_slice(&out.stdout).expect("catalog is JSON")
}

/// A finished tap run: its stdout lines (parsed) and stderr.
pub struct Run {
    /// Raw stdout lines.
    pub lines: Vec<String>,
    /// Parsed messages.
    pub messages: Vec<serde_json::Value>,
    /// stderr text.
    pub stderr: String,
    /// Exit code.
    pub code: Option<i32>,
}

impl Run {
    /// RECORD messages of a stream.
    pub fn records(&self, stream: &str) -> Vec<&serde_json::Value> {
        self.messages
            .iter()
            .filter(|m| m["type"] == "RECORD" && m["stream"] == stream)
            .map(|m| &m["record"])
            .collect()
    }

    /// The `record` text of each RECORD line, in order, exactly as written.
    pub fn record_texts(&self) -> Vec<&str> {
        self.lines
            .iter()
            .filter(|l| l.starts_with(r#"{"type":"RECORD""#))
            .map(|l| record_text(l))
            .collect()
    }

    /// The raw JSON text of each value of each RECORD, in order, by key.
    pub fn raw_records(&self) -> Vec<std::collections::BTreeMap<String, String>> {
        self.record_texts().into_iter().map(raw_values).collect()
    }

    /// The value of the last STATE message.
    pub fn last_state(&self) -> serde_json::Value {
        self.messages
            .iter()
            .rev()
            .find(|m| m["type"] == "STATE")
            .map(|m| m["value"].clone())
            .expect("a STATE message")
    }
}

/// Runs a sync with `config`, an optional catalog and state; asserts exit 0.
pub fn sync(
    config: &serde_json::Value,
    catalog: Option<&serde_json::Value>,
    state: Option<&serde_json::Value>,
) -> Run {
    let run = sync_any(config, catalog, state);
    assert_eq!(run.code, Some(0), "sync failed: {}", run.stderr);
    run
}

/// Runs a sync without asserting success.
pub fn sync_any(
    config: &serde_json::Value,
    catalog: Option<&serde_json::Value>,
    state: Option<&serde_json::Value>,
) -> Run {
    let files = TapFiles::new(config, catalog, state);
    let out = run_tap(&files.args(), &[]);
    parse_run(&out.stdout, stderr_of(&out), out.status.code())
}

/// A sync's config, catalog and state in temp files (alive as long as this), as arguments.
pub struct TapFiles {
    files: Vec<(&'static str, tempfile::NamedTempFile)>,
}

impl TapFiles {
    /// Writes the files.
    pub fn new(
        config: &serde_json::Value,
        catalog: Option<&serde_json::Value>,
        state: Option<&serde_json::Value>,
    ) -> TapFiles {
        let files = [
            ("--config", Some(config)),
            ("--catalog", catalog),
            ("--state", state),
        ]
        .into_iter()
        .filter_map(|(flag, v)| Some((flag, json_file(v?))))
        .collect();
        TapFiles { files }
    }

    /// `--config FILE [--catalog FILE] [--state FILE]`.
    pub fn args(&self) -> Vec<&str> {
        self.files
            .iter()
            .flat_map(|(flag, f)| [*flag, f.path().to_str().expect("UTF-8 temp path")])
            .collect()
    }
}

/// Parses stdout into lines and messages.
pub fn parse_run(stdout: &[u8], stderr: String, code: Option<i32>) -> Run {
    let text = String::from_utf8(stdout.to_vec()).expect("stdout is UTF-8");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let messages = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON line {e}: {l}")))
        .collect();
    Run {
        lines,
        messages,
        stderr,
        code,
    }
}

/// Discovers `config` and marks every stream (and all its fields) selected, Meltano style,
/// with an optional replication method per stream id.
pub fn select_all(catalog: &mut serde_json::Value, methods: &[(&str, &str, Option<&str>)]) {
    for s in catalog["streams"].as_array_mut().unwrap() {
        let id = s["tap_stream_id"].as_str().unwrap().to_string();
        for m in s["metadata"].as_array_mut().unwrap() {
            m["metadata"]["selected"] = serde_json::json!(true);
            if m["breadcrumb"] == serde_json::json!([]) {
                if let Some((_, method, key)) = methods.iter().find(|(s, _, _)| *s == id) {
                    m["metadata"]["replication-method"] = serde_json::json!(method);
                    if let Some(k) = key {
                        m["metadata"]["replication-key"] = serde_json::json!(k);
                    }
                }
            }
        }
    }
}

/// Keeps only the streams whose id is in `ids`.
pub fn only_streams(catalog: &mut serde_json::Value, ids: &[&str]) {
    catalog["streams"]
        .as_array_mut()
        .unwrap()
        .retain(|s| ids.contains(&s["tap_stream_id"].as_str().unwrap()));
}

/// The text of the `record` object of a RECORD line, exactly as written.
pub fn record_text(line: &str) -> &str {
    let start = line.find("\"record\":").expect("record key") + 9;
    let end = line
        .rfind(",\"version\":")
        .or_else(|| line.rfind(",\"time_extracted\":"))
        .expect("record end");
    &line[start..end]
}

/// Runs the tap and kills it (SIGKILL) after reading `n` lines of its output: a real
/// interruption. Returns every complete line it had written, including what was still in the pipe.
pub fn run_and_kill_after(
    config: &serde_json::Value,
    catalog: Option<&serde_json::Value>,
    state: Option<&serde_json::Value>,
    n: usize,
) -> Run {
    use std::io::{BufRead, BufReader, Read};
    let files = TapFiles::new(config, catalog, state);
    let mut child = Command::new(tap_bin())
        .args(files.args())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start tap-mysql");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut text = String::new();
    let mut line = String::new();
    let mut lines = 0;
    while lines < n && reader.read_line(&mut line).expect("read") > 0 {
        text.push_str(&line);
        line.clear();
        lines += 1;
    }
    child.kill().expect("kill");
    let mut rest = String::new();
    let _ = reader.read_to_string(&mut rest);
    let _ = child.wait();
    text.push_str(&rest);
    // Drop a trailing partial line: a real interruption can cut one.
    text.truncate(text.rfind('\n').map_or(0, |i| i + 1));
    parse_run(text.as_bytes(), String::new(), None)
}

/// The `id` of every row in JSONL files (BATCH files written uncompressed), file by file.
pub fn jsonl_ids(files: &[PathBuf]) -> Vec<i64> {
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_else(|e| panic!("{}: {e}", f.display()))
                .lines()
                .map(|l| {
                    serde_json::from_str::<serde_json::Value>(l).unwrap()["id"]
                        .as_i64()
                        .unwrap()
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The raw JSON text of each top-level value of a record object, by key.
pub fn raw_values(record: &str) -> std::collections::BTreeMap<String, String> {
    let body = &record[1..record.len() - 1];
    let mut out = std::collections::BTreeMap::new();
    let (mut depth, mut in_str, mut esc, mut start) = (0, false, false, 0);
    let bytes = body.as_bytes();
    let mut push = |part: &str| {
        let colon = {
            // the key is a JSON string: find its closing quote, then the colon
            let mut i = 1;
            let b = part.as_bytes();
            while b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i + 1
        };
        let key: String = serde_json::from_str(&part[..colon]).unwrap();
        out.insert(key, part[colon + 1..].to_string());
    };
    for (i, &c) in bytes.iter().enumerate() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, b'\\') => esc = true,
                (false, b'"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            b'"' => in_str = true,
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => {
                push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    push(&body[start..]);
    out
}

/// Certificates for the TLS server: a CA, a server certificate for 127.0.0.1 only (so `localhost`
/// is a wrong host name), a client
/// certificate, and an unrelated CA.
pub struct Certs {
    /// Directory holding the PEM files.
    pub dir: PathBuf,
}

impl Certs {
    /// Path of a PEM file in the directory.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }
}

fn make_certs() -> Result<Certs, String> {
    let dir = tempfile::Builder::new()
        .prefix("tap-mysql-certs-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    let script = r#"
set -e
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=tap-mysql test CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=unrelated CA" -keyout other-ca-key.pem -out other-ca.pem 2>/dev/null
printf "subjectAltName=IP:127.0.0.1\n" > san.ext
openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout server-key.pem -out server.csr 2>/dev/null
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile san.ext -out server.pem 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=tap-client" -keyout client-key.pem -out client.csr 2>/dev/null
printf "extendedKeyUsage=clientAuth\n" > client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 2 -extfile client.ext -out client.pem 2>/dev/null
"#;
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(&dir)
        .output()
        .map_err(|e| format!("openssl: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(Certs { dir })
}

static TLS: OnceLock<Result<(Server, Certs), String>> = OnceLock::new();

/// A second private server that requires TLS (certificates from a test CA).
pub fn tls_server() -> &'static (Server, Certs) {
    let r = TLS.get_or_init(|| {
        let certs = make_certs()?;
        let server = start_with(&[
            format!("--ssl-ca={}", certs.path("ca.pem")),
            format!("--ssl-cert={}", certs.path("server.pem")),
            format!("--ssl-key={}", certs.path("server-key.pem")),
            "--require-secure-transport=ON".to_string(),
        ])?;
        let opts = OptsBuilder::new()
            .socket(Some(server.socket.to_string_lossy().to_string()))
            .user(Some("root"));
        let mut c = Conn::new(opts).map_err(|e| e.to_string())?;
        c.query_drop(format!(
            "CREATE USER 'x509user'@'%' IDENTIFIED BY '{PASSWORD}' REQUIRE X509; GRANT ALL ON *.* TO 'x509user'@'%'"
        ))
        .map_err(|e| e.to_string())?;
        Ok((server, certs))
    });
    match r {
        Ok(s) => s,
        Err(e) => panic!("TLS test server unavailable: {e}"),
    }
}

/// A TCP proxy to the test server that cuts the first connection whose server-to-client
/// traffic passes `cut_after` bytes (later connections pass through untouched).
pub struct CuttingProxy {
    /// Port on 127.0.0.1 to connect to instead of the server.
    pub port: u16,
    /// Set once a connection was cut.
    pub cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl CuttingProxy {
    /// Starts the proxy (its threads live as long as the test process).
    pub fn start(cut_after: u64) -> CuttingProxy {
        use std::io::{Read, Write};
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let upstream_port = server().port;
        let listener = TcpListener::bind("127.0.0.1:0").expect("proxy bind");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let cut_flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { continue };
                let Ok(upstream) = std::net::TcpStream::connect(("127.0.0.1", upstream_port))
                else {
                    continue;
                };
                let cut = cut_flag.clone();
                let (mut c_read, mut u_write) =
                    (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    while let Ok(n) = c_read.read(&mut buf) {
                        if n == 0 || u_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                    let _ = u_write.shutdown(std::net::Shutdown::Both);
                });
                let (mut u_read, mut c_write) = (upstream, client);
                std::thread::spawn(move || {
                    let mut buf = [0u8; 16384];
                    let mut total = 0u64;
                    while let Ok(n) = u_read.read(&mut buf) {
                        if n == 0 || c_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        total += n as u64;
                        if total > cut_after && !cut.swap(true, Ordering::SeqCst) {
                            // The network drops: both directions, mid-result-set.
                            let _ = c_write.shutdown(std::net::Shutdown::Both);
                            let _ = u_read.shutdown(std::net::Shutdown::Both);
                            break;
                        }
                    }
                    let _ = c_write.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        CuttingProxy { port, cut }
    }
}

/// Runs the tap with `args`, reads `after_lines` lines of its output, calls `action` with the
/// child's pid (to signal it, kill its connections, stall...), then reads everything else and
/// waits. Returns the complete lines, stderr and exit code.
pub fn run_with_action(args: &[&str], after_lines: usize, action: impl FnOnce(u32)) -> Run {
    use std::io::{BufRead, BufReader, Read};
    let mut child = Command::new(tap_bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tap-mysql");
    let mut reader = BufReader::new(child.stdout.take().expect("stdout"));
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    // Drain stderr on a thread so a chatty tap never blocks on it.
    let stderr_thread = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    let mut text = String::new();
    let mut line = String::new();
    for _ in 0..after_lines {
        if reader.read_line(&mut line).expect("read") == 0 {
            break;
        }
        text.push_str(&line);
        line.clear();
    }
    action(child.id());
    reader.read_to_string(&mut text).expect("read");
    let status = child.wait().expect("wait");
    let stderr = stderr_thread.join().unwrap_or_default();
    // The tap was not killed: every line must be complete (parse_run fails on a partial one).
    parse_run(text.as_bytes(), stderr, shell_code(status))
}

/// The exit status as a shell reports it: 128 + the signal for a process ended by a signal (the
/// tap ends by the signal that stopped it, after its clean stop).
pub fn shell_code(status: std::process::ExitStatus) -> Option<i32> {
    use std::os::unix::process::ExitStatusExt;
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Kills (KILL CONNECTION) the test user's server connections matching a PROCESSLIST condition,
/// waiting up to 10 s for one to appear; returns how many were killed.
pub fn kill_connections(condition: &str) -> usize {
    let mut root = root_conn();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let ids: Vec<u64> = root
            .query(format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{USER}' AND {condition}"
            ))
            .expect("processlist");
        let killed = ids
            .iter()
            .filter(|id| root.query_drop(format!("KILL CONNECTION {id}")).is_ok())
            .count();
        if killed > 0 || Instant::now() > deadline {
            return killed;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the tap `pid`, writing BATCH files to `dir`, is stalled on its unread stdout:
/// its writer thread sleeps in a pipe write (where the kernel tells, in `wchan`), then `dir`
/// holds files and none appeared or vanished for a second (the workers are blocked too); at
/// most 60 s in all.
pub fn wait_until_stalled(pid: u32, dir: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while writer_in_pipe_write(pid) == Some(false) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let count = || std::fs::read_dir(dir).map_or(0, |d| d.count());
    let mut last = count();
    let mut since = Instant::now();
    while (last == 0 || since.elapsed() < Duration::from_secs(1)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = count();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
}

/// Whether the tap's writer thread sleeps in a pipe write; None when the kernel does not say.
fn writer_in_pipe_write(pid: u32) -> Option<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    for task in tasks.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == "singer-writer" {
            // "0" while it runs; unreadable where the kernel hides it.
            let wchan = std::fs::read_to_string(task.path().join("wchan")).ok()?;
            return Some(wchan.contains("pipe_write"));
        }
    }
    Some(false)
}

/// A small deterministic generator for randomized tests (same seed, same sequence).
pub struct Lcg(pub u64);

impl Lcg {
    /// The next 31-bit value.
    pub fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    /// A value in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Up to `max` random bytes.
    pub fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (self.next() as usize) % (max + 1);
        (0..n).map(|_| self.next() as u8).collect()
    }

    /// Up to `max` pieces of `alphabet`, joined.
    pub fn text(&mut self, alphabet: &[&str], max: usize) -> String {
        let n = (self.next() as usize) % (max + 1);
        (0..n)
            .map(|_| alphabet[(self.next() as usize) % alphabet.len()])
            .collect()
    }
}

/// Tests that take a server-wide lock (`FLUSH TABLES WITH READ LOCK`) wait for every running
/// query to end; tests that deliberately keep a query running (a stalled reader, a long report)
/// would make them time out. Those hold `long_query()`, the others `server_wide_lock()`. Tests
/// that change a global server setting hold the write side too, through [`set_global`]: all the
/// tests of the binary share one server, so such tests run one at a time, whatever their file.
static SERVER_WIDE: std::sync::RwLock<()> = std::sync::RwLock::new(());

thread_local! {
    /// The write side of the lock while this thread holds any [`ServerWide`] guard, and how many
    /// it holds: a test may hold `server_wide_lock()` and several `set_global` guards together.
    static WRITE_HELD: std::cell::RefCell<(usize, Option<std::sync::RwLockWriteGuard<'static, ()>>)> =
        const { std::cell::RefCell::new((0, None)) };
    /// How many `long_query()` guards this thread holds (the write side would wait for itself).
    static READ_HELD: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Held while a test keeps a query running on purpose: [`long_query`].
pub struct LongQuery {
    _guard: std::sync::RwLockReadGuard<'static, ()>,
}

impl Drop for LongQuery {
    fn drop(&mut self) {
        READ_HELD.with(|n| n.set(n.get() - 1));
    }
}

/// Held while a test keeps a query running on purpose.
pub fn long_query() -> LongQuery {
    assert_eq!(
        WRITE_HELD.with(|w| w.borrow().0),
        0,
        "long_query() while this test holds the server-wide lock (which excludes long queries)"
    );
    let guard = SERVER_WIDE.read().unwrap_or_else(|e| e.into_inner());
    READ_HELD.with(|n| n.set(n.get() + 1));
    LongQuery { _guard: guard }
}

/// The write side of the server-wide lock: [`server_wide_lock`].
pub struct ServerWide(());

impl Drop for ServerWide {
    fn drop(&mut self) {
        let last = WRITE_HELD.with(|w| {
            let mut w = w.borrow_mut();
            w.0 -= 1;
            if w.0 == 0 {
                w.1.take()
            } else {
                None
            }
        });
        drop(last);
    }
}

/// Held while a test takes (or makes the tap take) the global read lock, or changes a global
/// setting. Taken once per thread, however many guards the test holds.
pub fn server_wide_lock() -> ServerWide {
    assert_eq!(
        READ_HELD.with(|n| n.get()),
        0,
        "the server-wide lock while this test holds long_query(): it would wait for itself"
    );
    let held = WRITE_HELD.with(|w| w.borrow().0 > 0);
    let guard = (!held).then(|| SERVER_WIDE.write().unwrap_or_else(|e| e.into_inner()));
    WRITE_HELD.with(|w| {
        let mut w = w.borrow_mut();
        w.0 += 1;
        if guard.is_some() {
            w.1 = guard;
        }
    });
    ServerWide(())
}

/// A global server setting changed for the life of the guard: [`set_global`].
pub struct GlobalSetting {
    name: String,
    old: Option<String>,
    // Dropped after the setting is restored.
    _lock: ServerWide,
}

/// Sets the global server variable `name` to `value` (a number goes in as a number, anything
/// else as a string) and restores the value it had when the guard is dropped, also when the
/// test panics. The guard holds the server-wide lock, so no other test that changes a global
/// setting, takes a global lock or keeps a query running on purpose runs meanwhile.
pub fn set_global(name: &str, value: &str) -> GlobalSetting {
    let lock = server_wide_lock();
    let mut root = root_conn();
    let old: Option<String> = root
        .query_first(format!("SELECT CAST(@@GLOBAL.{name} AS CHAR)"))
        .unwrap_or_else(|e| panic!("reading @@GLOBAL.{name}: {e}"))
        .flatten();
    root.query_drop(format!("SET GLOBAL {name} = {}", sql_value(Some(value))))
        .unwrap_or_else(|e| panic!("SET GLOBAL {name} = {value}: {e}"));
    GlobalSetting {
        name: name.to_string(),
        old,
        _lock: lock,
    }
}

impl Drop for GlobalSetting {
    fn drop(&mut self) {
        let sql = format!(
            "SET GLOBAL {} = {}",
            self.name,
            sql_value(self.old.as_deref())
        );
        let opts = OptsBuilder::new()
            .socket(Some(server().socket.to_string_lossy().to_string()))
            .user(Some("root"));
        if let Err(e) = Conn::new(opts).and_then(|mut c| c.query_drop(&sql)) {
            // Never a second panic while the test already panics (that aborts the process).
            if std::thread::panicking() {
                eprintln!("could not restore ({sql}): {e}");
            } else {
                panic!("could not restore ({sql}): {e}");
            }
        }
    }
}

/// A value for `SET GLOBAL`: NULL, a bare number, or a quoted string.
fn sql_value(value: Option<&str>) -> String {
    match value {
        None => "NULL".to_string(),
        Some(v)
            if !v.is_empty()
                && v.trim_start_matches('-')
                    .bytes()
                    .all(|b| b.is_ascii_digit()) =>
        {
            v.to_string()
        }
        Some(v) => format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''")),
    }
}
