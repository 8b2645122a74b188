//! Where a binlog read starts (by file and position, or by GTID) and how every stream's
//! bookmark reaches the end position.

use crate::cdc::dump::{bookmark_gtid, DumpFrom};
use crate::cdc::gtid::GtidState;
use crate::cdc::stream::{CdcStream, Position};
use crate::config::Flavor;
use crate::error::{Error, Result};
use crate::sink::record::{OutputSender, StateLine};
use crate::source::snapshot::BinlogCoords;
use crate::state::Bookmark;

/// Where a run starts reading and how it tells what each stream already has.
pub(super) enum Start {
    /// By binlog file and position: the oldest bookmark's, with its GTID (tracked as
    /// transactions pass). Events up to a stream's own position are already sent.
    File { pos: Position, gtid: Option<String> },
    /// By GTID (`use_gtid`): from the transactions every stream has (`from`); a transaction is
    /// already sent for a stream when its own GTID position (`streams`) includes it. File names
    /// and positions are only hints: they may be another server's.
    Gtid {
        from: GtidState,
        streams: Vec<GtidState>,
        server: GtidState,
    },
}

/// Chooses how this run starts: by GTID when `use_gtid` is set and the bookmarks and the
/// server have GTIDs, else by file and position. Bookmarks without a GTID are an error under
/// `use_gtid` (a warning without it) once the server has GTIDs.
pub(super) fn plan_start(
    flavor: Flavor,
    use_gtid: bool,
    streams: &[CdcStream],
    end: &BinlogCoords,
) -> Result<Start> {
    let server = match end.gtid.as_deref() {
        Some(g) => GtidState::parse(flavor, g).map_err(|e| {
            Error::runtime(format!(
                "binlog: the server's GTID position '{g}' is not readable: {e}"
            ))
        })?,
        None => GtidState::parse(flavor, "").map_err(Error::runtime)?,
    };
    let missing: Vec<&str> = streams
        .iter()
        .filter(|s| stream_gtid(s).is_none())
        .map(|s| s.plan.stream_id.as_str())
        .collect();
    if !use_gtid {
        if !missing.is_empty() && !server.is_empty() {
            log::warn!(
                "{}: the LOG_BASED bookmark has no gtid although the server uses GTIDs, so it could not be resumed by GTID (use_gtid) after a failover; it gets one as it advances",
                names(&missing)
            );
        }
        return file_start(streams);
    }
    if !missing.is_empty() {
        if server.is_empty() {
            log::info!("binlog: use_gtid is set but the server has no GTID yet: starting from the bookmarks' file/position");
            return file_start(streams);
        }
        return Err(missing_gtid_error(&missing));
    }
    let states = streams
        .iter()
        .map(|s| bookmark_gtid(flavor, stream_gtid(s).unwrap_or_default()))
        .collect::<Result<Vec<_>>>()?;
    if server.is_empty() && states.iter().all(GtidState::is_empty) {
        log::info!("binlog: use_gtid is set but the server has no GTID yet: starting from the bookmarks' file/position");
        return file_start(streams);
    }
    gtid_start(streams, states, server)
}

/// A stream bookmark's `gtid` ("" when the server had no GTID transaction at that point).
fn stream_gtid(s: &CdcStream) -> Option<&str> {
    s.bookmark.binlog().gtid()
}

fn names(ids: &[&str]) -> String {
    let quoted: Vec<String> = ids.iter().map(|i| format!("'{i}'")).collect();
    format!("stream {}", quoted.join(", "))
}

/// Bookmarks without a GTID under `use_gtid`: bad input (exit 2), the run reads nothing.
/// The tap cannot fill the GTID in: the bookmark's file and position may be another
/// server's, where they mean other transactions.
fn missing_gtid_error(missing: &[&str]) -> Error {
    Error::usage(format!(
        "{}: the LOG_BASED bookmark has no gtid, and with use_gtid the GTID is the position (its log_file/log_pos may be another server's). Re-snapshot the stream (remove its bookmark from the state); or, if the server that wrote the bookmark is still the one you read and is MariaDB, add its GTID to the bookmark as \"gtid\": the result of SELECT BINLOG_GTID_POS('<log_file>', <log_pos>) on that server; or run with use_gtid set to false",
        names(missing)
    ))
}

/// Starts at the oldest bookmark's file and position.
fn file_start(streams: &[CdcStream]) -> Result<Start> {
    let pos = streams
        .iter()
        .filter_map(|s| s.position())
        .min_by(|a, b| a.cmp(b))
        .ok_or_else(|| Error::runtime("LOG_BASED: no stream has a binlog bookmark"))?;
    // The GTID position that goes with the oldest bookmark, to keep tracking it.
    let gtid = streams
        .iter()
        .filter(|s| s.position().as_ref() == Some(&pos))
        .find_map(|s| stream_gtid(s).map(str::to_string));
    Ok(Start::File { pos, gtid })
}

/// Starts at the transactions every stream has; refuses a bookmark that has transactions the
/// server's binary log does not (another server, or a failover that lost them).
fn gtid_start(streams: &[CdcStream], states: Vec<GtidState>, server: GtidState) -> Result<Start> {
    for (s, g) in streams.iter().zip(&states) {
        if !server.contains_all(g) {
            return Err(Error::runtime(format!(
                "binlog: the bookmark of stream '{}' is ahead of the server's binary log: its GTID position '{g}' has transactions the server's ('{server}') does not. Is this another server, or did a failover lose them? Re-snapshot the LOG_BASED streams: remove their bookmarks from the state",
                s.plan.stream_id
            )));
        }
    }
    let from = states
        .iter()
        .skip(1)
        .fold(states.first().cloned(), |acc, g| acc.map(|a| a.common(g)))
        .ok_or_else(|| Error::runtime("LOG_BASED: no stream has a binlog bookmark"))?;
    Ok(Start::Gtid {
        from,
        streams: states,
        server,
    })
}

impl Start {
    pub(super) fn from(&self) -> DumpFrom {
        match self {
            Start::File { pos, .. } => DumpFrom::File(pos.clone()),
            Start::Gtid { from, .. } => DumpFrom::Gtid(from.clone()),
        }
    }

    /// The binlog file before the dump's first rotate event names the real one.
    pub(super) fn file(&self) -> String {
        match self {
            Start::File { pos, .. } => pos.file.clone(),
            Start::Gtid { .. } => String::new(),
        }
    }

    /// The GTID position as transactions pass, from the start.
    pub(super) fn tracker(&self, flavor: Flavor) -> Result<GtidState> {
        match self {
            Start::File { gtid, .. } => bookmark_gtid(flavor, gtid.as_deref().unwrap_or("")),
            Start::Gtid { from, .. } => Ok(from.clone()),
        }
    }

    pub(super) fn stream_gtids(&self) -> Option<Vec<GtidState>> {
        match self {
            Start::File { .. } => None,
            Start::Gtid { streams, .. } => Some(streams.clone()),
        }
    }

    /// Whether there is nothing to read; an error when the bookmarks are ahead of the server.
    pub(super) fn at_end(&self, end: &Position) -> Result<bool> {
        match self {
            Start::Gtid { from, server, .. } => Ok(from.contains_all(server)),
            Start::File { pos, .. } => match pos.cmp(end) {
                std::cmp::Ordering::Equal => Ok(true),
                std::cmp::Ordering::Less => Ok(false),
                std::cmp::Ordering::Greater => Err(Error::runtime(format!(
                    "binlog: the bookmark {}:{} is ahead of the server's binary log (it ends at {}:{}): is this another server, or was the binlog reset? Re-snapshot the LOG_BASED streams: remove their bookmarks from the state",
                    pos.file, pos.pos, end.file, end.pos
                ))),
            },
        }
    }

    /// Moves every stream to the end position. `read`: the GTID position where the read ended
    /// (None when nothing was read).
    pub(super) fn finish(
        &self,
        streams: &mut [CdcStream],
        out: &OutputSender,
        end: &BinlogCoords,
        read: Option<GtidState>,
    ) -> Result<()> {
        match self {
            Start::File { .. } => finish(streams, out, end, read.and_then(|g| g.text())),
            Start::Gtid {
                streams: starts,
                server,
                ..
            } => finish_gtid(streams, out, end, read.as_ref().unwrap_or(server), starts),
        }
    }
}

/// Moves every stream that is behind to the end position (streams marked for a re-snapshot
/// keep the bookmark that asks for it).
pub(super) fn finish(
    streams: &mut [CdcStream],
    out: &OutputSender,
    end: &BinlogCoords,
    gtid: Option<String>,
) -> Result<()> {
    // An empty server position (no GTID transaction yet) leaves the bookmarks' as they are.
    let end_gtid = end.gtid.clone().filter(|g| !g.is_empty()).or(gtid);
    let end_pos = Position {
        file: end.file.clone(),
        pos: end.position,
    };
    let mut moved = Vec::new();
    for s in streams.iter_mut().filter(|s| s.resnapshot.is_none()) {
        let behind = s
            .position()
            .is_none_or(|p| p.cmp(&end_pos) == std::cmp::Ordering::Less);
        if behind {
            let b = s.bookmark_at(&end.file, end.position, end_gtid.clone());
            s.bookmark = b.clone();
            moved.push((s.plan.stream_id.clone(), b));
        }
    }
    send_bookmarks(out, moved)
}

/// New bookmarks of several streams at one binlog position, as one STATE line: a resume from
/// any STATE then finds every stream a transaction touched on the same side of it.
pub(super) fn send_bookmarks(out: &OutputSender, moved: Vec<(String, Bookmark)>) -> Result<()> {
    let last = moved.len().saturating_sub(1);
    for (i, (stream, b)) in moved.into_iter().enumerate() {
        let line = if i == last {
            StateLine::Now
        } else {
            StateLine::Final // folded into the STATE line of the last one
        };
        out.bookmark_with(&stream, b, None, line)?;
    }
    Ok(())
}

/// Reading by GTID: every stream moves to the end position with its GTID position there (what
/// it had plus what the run read, or the server's when nothing was read), also when only the
/// file name changes (bookmarks then carry this server's names).
fn finish_gtid(
    streams: &mut [CdcStream],
    out: &OutputSender,
    end: &BinlogCoords,
    read: &GtidState,
    starts: &[GtidState],
) -> Result<()> {
    let mut moved = Vec::new();
    for (s, start) in streams.iter_mut().zip(starts) {
        if s.resnapshot.is_some() {
            continue;
        }
        let b = s.bookmark_at(&end.file, end.position, Some(start.union(read).to_string()));
        if b != s.bookmark {
            s.bookmark = b.clone();
            moved.push((s.plan.stream_id.clone(), b));
        }
    }
    send_bookmarks(out, moved)
}
