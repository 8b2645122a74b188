//! Bookmarks whose binlog file the server no longer has (purged after its retention window):
//! found before the run reads anything, so such a stream can be re-snapshotted in the same run.

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

use super::gtid::binlog_file_order;

/// The binlog files the server still has, oldest first; None when it cannot tell (binary log
/// off, or no REPLICATION CLIENT / BINLOG MONITOR privilege: the dump then reports a purge).
pub(crate) fn available_files(conn: &mut Conn) -> Option<Vec<String>> {
    let files: Vec<String> = conn
        .query_map("SHOW BINARY LOGS", |row: Row| row.get::<String, _>(0))
        .ok()?
        .into_iter()
        .flatten()
        .collect();
    (!files.is_empty()).then_some(files)
}

/// Whether `file` was purged: it sorts before the oldest file the server has.
pub(crate) fn is_purged(file: &str, available: &[String]) -> bool {
    available.first().is_some_and(|oldest| {
        !available.iter().any(|f| f == file)
            && binlog_file_order(file, oldest) == std::cmp::Ordering::Less
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purged_files_sort_before_the_oldest() {
        let have = vec!["bin.000007".to_string(), "bin.000008".to_string()];
        assert!(is_purged("bin.000006", &have));
        assert!(is_purged("bin.000001", &have));
        assert!(!is_purged("bin.000007", &have));
        assert!(!is_purged("bin.000009", &have), "ahead is another error");
        assert!(!is_purged("bin.000001", &[]));
    }

    #[test]
    fn files_compare_by_number_not_text() {
        let have = vec!["bin.1000000".to_string(), "bin.1000001".to_string()];
        assert!(is_purged("bin.999999", &have), "fewer digits, lower number");
        assert!(!is_purged("bin.1000001", &have), "still there");
        assert!(!is_purged("bin.1000002", &have));
        let have = vec![
            "bin.000005".to_string(),
            "bin.000009".to_string(),
            "bin.000010".to_string(),
        ];
        assert!(
            !is_purged("bin.000007", &have),
            "a gap after the oldest is not a purge"
        );
        assert!(!is_purged("bin.000010", &have));
        assert!(is_purged("bin.000004", &have));
    }
}
