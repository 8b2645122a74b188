//! The SSH tunnel against a real OpenSSH server (`tests/support/sshd.rs`): syncs through it,
//! host key and user key refusals, a dropped SSH session mid-table, and no key material in any
//! output.

use std::collections::HashMap;

use mysql::prelude::Queryable;
use serde_json::{json, Value};

use crate::support::sshd::{self, Sshd, RSA_PASSPHRASE};
use crate::support::*;

/// `config_for(db)` reaching the database through the tunnel of `sshd` with the OpenSSH ed25519
/// key (by path) and the host key given as a known_hosts line.
fn tunnel_config(db: &str, server: &Sshd) -> Value {
    let mut cfg = config_for(db);
    cfg["ssh_tunnel"] = json!({
        "enable": true,
        "host": "127.0.0.1",
        "port": server.port,
        "username": server.user,
        "private_key": server.path("user_ed25519"),
        "known_hosts": server.known_hosts_line(),
    });
    cfg
}

fn small_db(hint: &str, rows: u32) -> String {
    let db = fresh_db(hint);
    db_conn(&db)
        .query_drop(format!(
            "CREATE TABLE t (id int primary key, v varchar(40), d decimal(12,2));
             INSERT INTO t SELECT seq, CONCAT('v-', seq), seq / 4 FROM seq_1_to_{rows}"
        ))
        .unwrap();
    db
}

fn discover_with(cfg: &Value, env: &[(&str, &str)]) -> std::process::Output {
    let f = json_file(cfg);
    run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], env)
}

/// Nothing secret in either stream: no private key text, no passphrase, no password.
fn assert_no_secrets(server: &Sshd, text: &str) {
    for name in ["user_ed25519", "user_rsa_pem", "stranger_ed25519"] {
        let key = server.read(name);
        let body: Vec<&str> = key.lines().filter(|l| !l.starts_with("-----")).collect();
        for line in body.iter().filter(|l| l.len() > 20) {
            assert!(
                !text.contains(&line[..20]),
                "key material of {name} printed"
            );
        }
    }
    assert!(!text.contains("PRIVATE KEY"));
    assert!(!text.contains(RSA_PASSPHRASE));
    assert!(!text.contains(PASSWORD));
}

#[test]
fn full_table_through_the_tunnel_equals_a_direct_read() {
    let server = sshd::sshd();
    let db = small_db("ssh_full", 5_000);
    let direct = sync(&config_for(&db), None, None);
    let tunneled = sync(&tunnel_config(&db, server), None, None);
    let stream = format!("{db}-t");
    assert_eq!(tunneled.records(&stream).len(), 5_000);
    assert_eq!(tunneled.raw_records(), direct.raw_records());
    let err = &tunneled.stderr;
    assert!(err.contains("SSH tunnel: connected to"), "{err}");
    assert!(err.contains("through SSH"), "{err}");
    assert_eq!(
        err.matches("SSH tunnel: connected to").count(),
        1,
        "one session: {err}"
    );
    assert_no_secrets(server, &(tunneled.lines.join("\n") + err));
}

#[test]
fn log_based_through_the_tunnel() {
    let server = sshd::sshd();
    let _lock = cdc_lock();
    let db = small_db("ssh_cdc", 100);
    let catalog = log_based(&db, &["t"], &[]);
    let cfg = tunnel_config(&db, server);
    let first = sync(&cfg, Some(&catalog), None);
    let stream = format!("{db}-t");
    assert_eq!(first.records(&stream).len(), 100, "initial load");
    db_conn(&db)
        .query_drop(
            "INSERT INTO t VALUES (101, 'new', 1.25); UPDATE t SET v = 'changed' WHERE id = 1;
             DELETE FROM t WHERE id = 2",
        )
        .unwrap();
    let second = sync(&cfg, Some(&catalog), Some(&first.last_state()));
    let got: Vec<(i64, Value, bool)> = second
        .records(&stream)
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["v"].clone(),
                r["_sdc_deleted_at"].is_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (101, json!("new"), false),
            (1, json!("changed"), false),
            (2, json!("v-2"), true)
        ],
        "{}",
        second.stderr
    );
    // The binlog connection went through the same single session.
    let sessions = second.stderr.matches("SSH tunnel: connected to").count();
    assert_eq!(sessions, 1, "{}", second.stderr);
    assert!(second.stderr.contains("through SSH"), "{}", second.stderr);
}

#[test]
fn tls_through_the_tunnel_verifies_the_certificate_chain() {
    let server = sshd::sshd();
    let (tls, certs) = tls_server();
    let mut cfg = tunnel_config("mysql_no_such_db", server);
    cfg["port"] = json!(tls.port);
    cfg["ssl"] = json!(true);
    cfg["ssl_ca"] = json!(certs.path("ca.pem"));
    let out = discover_with(&cfg, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("(TLS: TLS_"), "{err}");
    assert!(
        err.contains("certificate chain is verified but not its host name"),
        "{err}"
    );
    // A certificate from another CA is still refused, once.
    cfg["ssl_ca"] = json!(certs.path("other-ca.pem"));
    cfg["connect_retries"] = json!(2);
    let out = discover_with(&cfg, &[]);
    assert_refused(&out, "certificate");
}

/// One clear line, exit 1, no retry.
fn assert_refused(out: &std::process::Output, needle: &str) -> String {
    let err = stderr_of(out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("retrying"), "a refusal cannot heal: {err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains(needle), "{}", errors[0]);
    errors[0].to_string()
}

#[test]
fn a_changed_host_key_is_refused_once() {
    let server = sshd::sshd();
    let mut cfg = tunnel_config("mysql_no_such_db", server);
    cfg["connect_retries"] = json!(3);
    // The known_hosts line holds another key for this host and port.
    let other = server.read("other_host_ed25519.pub");
    let mut fields = other.split_whitespace();
    cfg["ssh_tunnel"]["known_hosts"] = json!(format!(
        "[127.0.0.1]:{} {} {}",
        server.port,
        fields.next().unwrap(),
        fields.next().unwrap()
    ));
    let out = discover_with(&cfg, &[]);
    let line = assert_refused(&out, "does not match the key recorded for it");
    assert!(
        line.contains(&server.fingerprint("host_ed25519.pub")),
        "{line}"
    );
    // A pinned fingerprint that differs is refused the same way.
    cfg["ssh_tunnel"]["host_key_fingerprint"] = json!(server.fingerprint("other_host_ed25519.pub"));
    let out = discover_with(&cfg, &[]);
    assert_refused(&out, "not the pinned ssh_tunnel.host_key_fingerprint");
}

#[test]
fn an_unknown_host_is_refused_unless_the_check_is_turned_off() {
    let server = sshd::sshd();
    let home = tempfile::tempdir().unwrap();
    let mut cfg = tunnel_config("mysql_no_such_db", server);
    cfg["connect_retries"] = json!(3);
    cfg["ssh_tunnel"]["known_hosts"] = Value::Null;
    // The default: the user's ~/.ssh/known_hosts, which does not know this server.
    let home_env = [("HOME", home.path().to_str().unwrap())];
    let out = discover_with(&cfg, &home_env);
    assert_refused(&out, "is not in ~/.ssh/known_hosts");
    // Once recorded there, it is accepted.
    std::fs::create_dir(home.path().join(".ssh")).unwrap();
    std::fs::write(
        home.path().join(".ssh/known_hosts"),
        server.known_hosts_line(),
    )
    .unwrap();
    let out = discover_with(&cfg, &home_env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    // Opting out accepts any host key.
    std::fs::remove_file(home.path().join(".ssh/known_hosts")).unwrap();
    cfg["ssh_tunnel"]["host_key_check"] = json!(false);
    let out = discover_with(&cfg, &home_env);
    assert_eq!(out.status.code(), Some(0), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("host key is not verified"),
        "{}",
        stderr_of(&out)
    );
}

#[test]
fn a_user_key_the_server_does_not_know_is_refused_once() {
    let server = sshd::sshd();
    let mut cfg = tunnel_config("mysql_no_such_db", server);
    cfg["connect_retries"] = json!(3);
    cfg["ssh_tunnel"]["private_key"] = json!(server.read("stranger_ed25519"));
    let out = discover_with(&cfg, &[]);
    assert_refused(&out, "refused the private key for user");
    assert_no_secrets(server, &(stderr_of(&out) + &stdout_of(&out)));
}

#[test]
fn pem_rsa_key_with_passphrase_and_pinned_fingerprint() {
    let server = sshd::sshd();
    let db = small_db("ssh_rsa", 10);
    let mut cfg = tunnel_config(&db, server);
    cfg["ssh_tunnel"]["private_key"] = json!(server.read("user_rsa_pem"));
    cfg["ssh_tunnel"]["private_key_password"] = json!(RSA_PASSPHRASE);
    cfg["ssh_tunnel"]["known_hosts"] = Value::Null;
    cfg["ssh_tunnel"]["host_key_fingerprint"] = json!(server.fingerprint("host_ed25519.pub"));
    let run = sync(&cfg, None, None);
    assert_eq!(run.records(&format!("{db}-t")).len(), 10);
    assert_no_secrets(server, &(run.lines.join("\n") + &run.stderr));
    // A missing passphrase is a config error that says so.
    cfg["ssh_tunnel"]["private_key_password"] = Value::Null;
    let out = discover_with(&cfg, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("set ssh_tunnel.private_key_password"), "{err}");
    // A wrong passphrase is a config error, before any connection.
    cfg["ssh_tunnel"]["private_key_password"] = json!("not-the-passphrase");
    let out = discover_with(&cfg, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("wrong ssh_tunnel.private_key_password"),
        "{err}"
    );
    assert!(!err.contains("not-the-passphrase"), "{err}");
    assert_no_secrets(server, &err);
}

#[test]
fn a_dropped_ssh_session_mid_table_resumes_without_loss() {
    // Its own sshd: killing its sessions must not touch the other tests' tunnels.
    let server = sshd::start_sshd().unwrap_or_else(|e| panic!("test sshd unavailable: {e}"));
    let n = 200_000;
    let db = fresh_db("ssh_drop");
    db_conn(&db)
        .query_drop(format!(
            "CREATE TABLE big (id int primary key, v varchar(200));
             INSERT INTO big SELECT seq, CONCAT('value-', seq, REPEAT('x', 100)) FROM seq_1_to_{n}"
        ))
        .unwrap();
    let mut cfg = tunnel_config(&db, &server);
    cfg["connect_retries"] = json!(3);
    cfg["max_parallel_streams"] = json!(1);
    let files = TapFiles::new(&cfg, None, None);
    let mut killed = 0;
    let run = run_with_action(&files.args(), 5_000, |_| killed = server.kill_sessions());
    assert!(killed > 0, "an SSH session was killed mid-read");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("reconnecting"), "{}", run.stderr);
    assert!(run.stderr.contains("re-established"), "{}", run.stderr);
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for r in run.records(&format!("{db}-big")) {
        *seen.entry(r["id"].as_i64().unwrap()).or_default() += 1;
    }
    assert_eq!(seen.len(), n, "every source row present");
    assert!(seen.values().all(|c| *c == 1), "no duplicates");
}

#[test]
fn an_unreachable_ssh_server_is_retried_then_one_error() {
    let server = sshd::sshd();
    let mut cfg = tunnel_config("mysql_no_such_db", server);
    cfg["connect_retries"] = json!(1);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    cfg["ssh_tunnel"]["port"] = json!(port);
    let out = discover_with(&cfg, &[]);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.matches("retrying").count(), 1, "{err}");
    let errors: Vec<&str> = err.lines().filter(|l| l.contains(" ERROR ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(
        errors[0].contains(&format!(
            "SSH tunnel: cannot connect to {}@127.0.0.1:{port}",
            server.user
        )),
        "{}",
        errors[0]
    );
}

#[test]
fn a_dropped_ssh_session_mid_binlog_resumes_at_the_last_commit() {
    let server = sshd::start_sshd().unwrap_or_else(|e| panic!("test sshd unavailable: {e}"));
    let _lock = cdc_lock();
    let db = fresh_db("ssh_binlog_drop");
    let mut c = db_conn(&db);
    c.query_drop("CREATE TABLE t (id int primary key, v varchar(300))")
        .unwrap();
    let catalog = log_based(&db, &["t"], &[]);
    let mut cfg = tunnel_config(&db, &server);
    cfg["connect_retries"] = json!(3);
    let state = sync(&cfg, Some(&catalog), None).last_state();
    for batch in 0..100 {
        c.query_drop(format!(
            "INSERT INTO t SELECT seq + {off}, REPEAT('v', 200) FROM seq_1_to_1000",
            off = batch * 1000
        ))
        .unwrap();
    }
    let files = TapFiles::new(&cfg, Some(&catalog), Some(&state));
    let mut killed = 0;
    let run = run_with_action(&files.args(), 10_000, |_| killed = server.kill_sessions());
    assert!(killed > 0, "an SSH session was killed mid-binlog");
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("re-established"), "{}", run.stderr);
    let ids: std::collections::HashSet<i64> = run
        .records(&format!("{db}-t"))
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(
        ids.len(),
        100_000,
        "every change present after the reconnect"
    );
}
