//! MariaDB-only binlog events the driver does not decode: GTID (162), GTID list (163), binlog
//! checkpoint (161) and annotate rows (160). Layouts from the MariaDB server source
//! documentation of the replication protocol; every read is bounds-checked, so a truncated or
//! corrupt event is an error, never a panic.

use super::gtid::MariadbGtid;

/// `ANNOTATE_ROWS_EVENT`.
pub(crate) const ANNOTATE_ROWS: u8 = 160;
/// `BINLOG_CHECKPOINT_EVENT`.
pub(crate) const BINLOG_CHECKPOINT: u8 = 161;
/// `GTID_EVENT`.
pub(crate) const GTID: u8 = 162;
/// `GTID_LIST_EVENT`.
pub(crate) const GTID_LIST: u8 = 163;
/// `START_ENCRYPTION_EVENT`.
pub(crate) const START_ENCRYPTION: u8 = 164;

/// Flag of a GTID event: the transaction is a standalone DDL/non-transactional statement (no
/// XID event ends it).
pub(crate) const FL_STANDALONE: u8 = 1;

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
}
