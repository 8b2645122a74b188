//! The replication connection read on a thread of its own: while the session decodes rows into
//! RECORDs, this thread receives the next events from the socket, checks and frames them.
//! Events reach the session in binlog order, in small batches.
//!
//! A batch is handed over when it holds [`BATCH_EVENTS`] events or [`BATCH_BYTES`] bytes, at
//! every event that can end a transaction or a file (so a quiet server's last transaction is not
//! held back), at an error, and at the end of the stream. At most [`BATCHES`] batches wait, so
//! memory stays bounded whatever the transaction size.

use crossbeam_channel::{bounded, Receiver};
use mysql::binlog::events::Event;
use mysql::binlog::EventType;
use mysql::BinlogStream;

use crate::cdc::mariadb;
use crate::error::{Error, Result};

/// Events per batch at most.
const BATCH_EVENTS: usize = 64;
/// Bytes of event data per batch, about.
const BATCH_BYTES: usize = 512 * 1024;
/// Batches waiting for the session at most.
const BATCHES: usize = 8;

type Item = std::result::Result<Event, mysql::Error>;

/// The events of one replication connection, read ahead on their own thread.
pub(super) struct EventFeed {
    rx: Receiver<Vec<Item>>,
    batch: std::vec::IntoIter<Item>,
}

impl EventFeed {
    /// Starts reading `binlog` on a new thread. Dropping the feed stops the thread at its next
    /// hand-over (it then closes the connection).
    pub(super) fn start(binlog: BinlogStream) -> Result<EventFeed> {
        let (tx, rx) = bounded::<Vec<Item>>(BATCHES);
        std::thread::Builder::new()
            .name("binlog-reader".into())
            .spawn(move || {
                let mut batch = Vec::with_capacity(BATCH_EVENTS);
                let mut bytes = 0usize;
                for item in binlog {
                    let (end, size) = match &item {
                        Ok(ev) => (ends_a_group(ev), ev.data().len()),
                        Err(_) => (true, 0),
                    };
                    let failed = item.is_err();
                    batch.push(item);
                    bytes += size;
                    if end || batch.len() >= BATCH_EVENTS || bytes >= BATCH_BYTES {
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH_EVENTS));
                        bytes = 0;
                        if tx.send(full).is_err() || failed {
                            return; // the session is gone, or the stream ended with an error
                        }
                    }
                }
                let _ = tx.send(batch);
            })
            .map_err(|e| Error::runtime(format!("binlog: cannot start the reader thread: {e}")))?;
        Ok(EventFeed {
            rx,
            batch: Vec::new().into_iter(),
        })
    }

    /// The next event, in binlog order; None at the end of the stream.
    pub(super) fn next(&mut self) -> Option<Item> {
        loop {
            if let Some(item) = self.batch.next() {
                return Some(item);
            }
            // The channel closes when the reader thread has handed over everything.
            self.batch = self.rx.recv().ok()?.into_iter();
        }
    }
}

/// Whether an event can end a transaction or a binlog file: the session may stop after it, so
/// it is handed over at once.
fn ends_a_group(ev: &Event) -> bool {
    let header = ev.header();
    if header.event_type_raw() == mariadb::GTID_LIST {
        return true;
    }
    matches!(
        header.event_type(),
        Ok(EventType::XID_EVENT
            | EventType::QUERY_EVENT
            | EventType::ROTATE_EVENT
            | EventType::FORMAT_DESCRIPTION_EVENT
            | EventType::STOP_EVENT)
    )
}
