//! The harness itself: servers that cannot hurt each other, and a clear report when one dies.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mysql::prelude::Queryable;

use crate::support::{root_conn, server, start_with};

/// A starting `mariadbd` deletes every `#sql*` file in its tmpdir: with a shared /tmp, those
/// would be the running servers' internal temporary tables, and a running MariaDB dies (signal
/// 11) at the end of its next information_schema query. Each server has a tmpdir of its own.
/// A server that dies anyway is reported as such, with the end of its error log.
#[test]
fn each_server_has_its_own_tmpdir_and_a_dead_one_is_reported() {
    let shared = server();
    let tmpdir: String = root_conn().query_first("SELECT @@tmpdir").unwrap().unwrap();
    assert_eq!(
        PathBuf::from(tmpdir.trim_end_matches('/')),
        shared.dir.join("tmp")
    );
    let probe = shared.dir.join("tmp").join("#sql-harness-probe.MAI");
    std::fs::write(&probe, b"probe").unwrap();

    let other = start_with(&[]).expect("a second server");
    assert!(
        probe.exists(),
        "starting another server deleted the shared server's temporary files"
    );
    std::fs::remove_file(&probe).unwrap();
    assert!(other.alive());
    assert_ne!(other.dir, shared.dir);

    std::process::Command::new("kill")
        .args(["-9", &other.pid.to_string()])
        .status()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while other.alive() {
        assert!(Instant::now() < deadline, "the killed server still runs");
        std::thread::sleep(Duration::from_millis(50));
    }
    let report = other.death_report();
    assert!(
        report.contains(&format!("THE TEST SERVER (pid {},", other.pid)),
        "{report}"
    );
    assert!(
        report.contains("ready for connections"),
        "the error log's tail: {report}"
    );
    assert!(shared.alive());
}
