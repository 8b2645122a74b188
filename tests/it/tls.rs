//! TLS against a private server that requires it (certificates from a throwaway test CA).

use serde_json::{json, Value};

use crate::support::*;

fn tls_config(host: &str) -> Value {
    let (server, certs) = tls_server();
    json!({
        "host": host,
        "port": server.port,
        "user": USER,
        "password": PASSWORD,
        "connect_retries": 2,
        "ssl": true,
        "ssl_ca": certs.path("ca.pem"),
        "filter_dbs": "mysql_no_such_db",
    })
}

fn run(cfg: &Value) -> std::process::Output {
    let f = json_file(cfg);
    run_tap(&["--config", f.path().to_str().unwrap(), "--discover"], &[])
}

#[test]
fn verified_tls_with_ca_and_host_name() {
    let out = run(&tls_config("127.0.0.1"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("(TLS: TLS_"), "the cipher is logged: {err}");
    // The certificate names 127.0.0.1 only: `localhost` reaches the same server but fails the
    // host name check, without retries.
    let out = run(&tls_config("localhost"));
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("certificate"), "{err}");
    assert!(!err.contains("retrying"), "{err}");
}

#[test]
fn inline_pem_and_client_certificate() {
    let (_, certs) = tls_server();
    let mut cfg = tls_config("127.0.0.1");
    cfg["ssl_ca"] = json!(std::fs::read_to_string(certs.path("ca.pem")).unwrap());
    cfg["user"] = json!("x509user");
    // Without a client certificate the REQUIRE X509 user is refused...
    let out = run(&cfg);
    assert_eq!(out.status.code(), Some(1), "{}", stderr_of(&out));
    assert!(
        stderr_of(&out).contains("Access denied"),
        "{}",
        stderr_of(&out)
    );
    // ...and with one (key given inline) it logs in.
    let key = std::fs::read_to_string(certs.path("client-key.pem")).unwrap();
    cfg["ssl_cert"] = json!(certs.path("client.pem"));
    cfg["ssl_key"] = json!(key);
    let out = run(&cfg);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        !err.contains("PRIVATE KEY") && !err.contains(&key[40..80]),
        "key material never printed"
    );
    assert!(!err.contains(PASSWORD));
}

#[test]
fn wrong_ca_is_rejected_without_retries() {
    let (_, certs) = tls_server();
    let mut cfg = tls_config("127.0.0.1");
    cfg["ssl_ca"] = json!(certs.path("other-ca.pem"));
    let out = run(&cfg);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        !err.contains("retrying"),
        "a certificate problem cannot heal: {err}"
    );
    let line = err.lines().find(|l| l.contains(" ERROR ")).unwrap();
    assert!(line.contains("cannot connect to 127.0.0.1"), "{line}");
    assert!(
        line.to_lowercase().contains("certificate")
            || line.to_lowercase().contains("unknownissuer"),
        "{line}"
    );
}

#[test]
fn ssl_verify_false_encrypts_without_verifying() {
    // For self-signed servers the user trusts: no CA given, still TLS.
    let mut cfg = tls_config("localhost");
    cfg["ssl_verify"] = json!(false);
    cfg["ssl_ca"] = Value::Null;
    let out = run(&cfg);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("(TLS: TLS_"), "{err}");
}

#[test]
fn plaintext_is_refused_by_a_server_requiring_tls() {
    let mut cfg = tls_config("127.0.0.1");
    cfg["ssl"] = json!(false);
    cfg["ssl_ca"] = Value::Null;
    let out = run(&cfg);
    let err = stderr_of(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(!err.contains("retrying"), "{err}");
    assert!(
        err.contains("insecure transport") || err.contains("3159") || err.contains("1045"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD));
}
