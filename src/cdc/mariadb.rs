//! MariaDB-only binlog events the driver does not decode: GTID (162), GTID list (163), binlog
//! checkpoint (161) and annotate rows (160). Layouts from the MariaDB server source
//! documentation of the replication protocol; every read is bounds-checked, so a truncated or
//! corrupt event is an error, never a panic.

use super::gtid::MariadbGtid;

/// `ANNOTATE_ROWS_EVENT`.
pub const ANNOTATE_ROWS: u8 = 160;
/// `BINLOG_CHECKPOINT_EVENT`.
pub const BINLOG_CHECKPOINT: u8 = 161;
/// `GTID_EVENT`.
pub const GTID: u8 = 162;
/// `GTID_LIST_EVENT`.
pub const GTID_LIST: u8 = 163;
/// `START_ENCRYPTION_EVENT`.
pub const START_ENCRYPTION: u8 = 164;

/// Flag of a GTID event: the transaction is a standalone DDL/non-transactional statement (no
/// XID event ends it).
pub const FL_STANDALONE: u8 = 1;

/// A decoded MariaDB GTID event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GtidEvent {
    /// The GTID (server id comes from the event header).
    pub gtid: MariadbGtid,
    /// Event flags (`FL_STANDALONE`, ...).
    pub flags: u8,
}

fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 4)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    d.get(at..at + 8).map(|b| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    })
}

/// Decodes a GTID event body: seq_no (u64), domain_id (u32), flags (u8), ...
pub fn gtid_event(data: &[u8], server_id: u32) -> Result<GtidEvent, String> {
    let seq = u64_at(data, 0).ok_or("truncated MariaDB GTID event")?;
    let domain = u32_at(data, 8).ok_or("truncated MariaDB GTID event")?;
    let flags = *data.get(12).ok_or("truncated MariaDB GTID event")?;
    Ok(GtidEvent {
        gtid: MariadbGtid {
            domain,
            server: server_id,
            seq,
        },
        flags,
    })
}

/// Decodes a GTID list event body: count (u32, low 28 bits), then (domain u32, server u32,
/// seq u64) per entry.
pub fn gtid_list_event(data: &[u8]) -> Result<Vec<MariadbGtid>, String> {
    let count = u32_at(data, 0).ok_or("truncated MariaDB GTID list event")? & 0x0fff_ffff;
    let mut out = Vec::with_capacity(count.min(1024) as usize);
    for i in 0..count as usize {
        let at = 4 + i * 16;
        out.push(MariadbGtid {
            domain: u32_at(data, at).ok_or("truncated MariaDB GTID list event")?,
            server: u32_at(data, at + 4).ok_or("truncated MariaDB GTID list event")?,
            seq: u64_at(data, at + 8).ok_or("truncated MariaDB GTID list event")?,
        });
    }
    Ok(out)
}

/// Decodes a binlog checkpoint event body: the file name.
pub fn binlog_checkpoint_event(data: &[u8]) -> Result<String, String> {
    let len = u32_at(data, 0).ok_or("truncated MariaDB binlog checkpoint event")? as usize;
    let name = data
        .get(4..4 + len)
        .ok_or("truncated MariaDB binlog checkpoint event")?;
    Ok(String::from_utf8_lossy(name).into_owned())
}

/// Decodes an annotate rows event body: the statement text.
pub fn annotate_rows_event(data: &[u8]) -> String {
    String::from_utf8_lossy(data).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gtid_events() {
        let mut d = 100u64.to_le_bytes().to_vec();
        d.extend(2u32.to_le_bytes());
        d.push(FL_STANDALONE);
        let e = gtid_event(&d, 7).unwrap();
        assert_eq!(
            e.gtid,
            MariadbGtid {
                domain: 2,
                server: 7,
                seq: 100
            }
        );
        assert_eq!(e.flags & FL_STANDALONE, FL_STANDALONE);
        assert!(gtid_event(&d[..10], 7).is_err());
    }

    #[test]
    fn gtid_lists() {
        let mut d = 2u32.to_le_bytes().to_vec();
        for (dom, srv, seq) in [(0u32, 1u32, 5u64), (1, 2, 9)] {
            d.extend(dom.to_le_bytes());
            d.extend(srv.to_le_bytes());
            d.extend(seq.to_le_bytes());
        }
        let l = gtid_list_event(&d).unwrap();
        assert_eq!(
            l[1],
            MariadbGtid {
                domain: 1,
                server: 2,
                seq: 9
            }
        );
        assert!(gtid_list_event(&d[..20]).is_err());
        assert_eq!(gtid_list_event(&0u32.to_le_bytes()).unwrap(), vec![]);
    }

    #[test]
    fn checkpoint_and_annotate() {
        let mut d = 13u32.to_le_bytes().to_vec();
        d.extend(b"binlog.000002");
        assert_eq!(binlog_checkpoint_event(&d).unwrap(), "binlog.000002");
        assert!(binlog_checkpoint_event(&d[..8]).is_err());
        assert_eq!(
            annotate_rows_event(b"INSERT INTO t VALUES (1)"),
            "INSERT INTO t VALUES (1)"
        );
    }
}
