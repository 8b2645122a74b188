//! The keys of a LOG_BASED stream past (or heading for) its initial load:
//!
//! - `log_file`, `log_pos`: the end of the last transaction whose changes were sent (while the
//!   initial load runs: the snapshot's position, where reading the binlog starts after it);
//! - `gtid`: the GTID position there (`""` when the server had no GTID transaction yet);
//! - `columns`: the table's column order there, for binlogs without column names;
//! - `dropped: true`: the table was dropped (or renamed away) at that position;
//! - `resnapshot`: why the table must be read again through a fresh snapshot (then there is no
//!   position).

use serde_json::{json, Value};

use super::fields::Fields;

/// The LOG_BASED keys of a bookmark.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct BinlogBookmark {
    pub(super) log_file: Option<String>,
    pub(super) log_pos: Option<u64>,
    pub(super) gtid: Option<String>,
    pub(super) columns: Option<Vec<String>>,
    pub(super) dropped: Option<bool>,
    pub(super) resnapshot: Option<String>,
}

impl BinlogBookmark {
    /// The keys this part owns.
    pub(super) const KEYS: [&'static str; 6] = [
        "log_file",
        "log_pos",
        "gtid",
        "columns",
        "resnapshot",
        "dropped",
    ];

    pub(super) fn read(f: &mut Fields) -> Result<BinlogBookmark, String> {
        Ok(BinlogBookmark {
            log_file: f.string("log_file")?,
            log_pos: f.u64("log_pos")?,
            gtid: f.string("gtid")?,
            columns: f.strings("columns")?,
            dropped: f.bool("dropped")?,
            resnapshot: f.string("resnapshot")?,
        })
    }

    /// The JSON value of one of [`Self::KEYS`], when set.
    pub(super) fn value(&self, key: &str) -> Option<Value> {
        match key {
            "log_file" => self.log_file.clone().map(Value::String),
            "log_pos" => self.log_pos.map(Value::from),
            "gtid" => self.gtid.clone().map(Value::String),
            "columns" => self.columns.as_ref().map(|c| json!(c)),
            "dropped" => self.dropped.map(Value::Bool),
            "resnapshot" => self.resnapshot.clone().map(Value::String),
            _ => None,
        }
    }

    /// The bookmarked binlog file (a position needs `log_pos` too).
    pub(crate) fn log_file(&self) -> Option<&str> {
        self.log_file.as_deref()
    }

    /// The bookmarked position: file and offset.
    pub(crate) fn position(&self) -> Option<(&str, u64)> {
        Some((self.log_file.as_deref()?, self.log_pos?))
    }

    /// The GTID position that goes with it.
    pub(crate) fn gtid(&self) -> Option<&str> {
        self.gtid.as_deref()
    }

    /// The table's column order at the position, when recorded.
    pub(crate) fn columns(&self) -> Option<&[String]> {
        self.columns.as_deref()
    }

    /// Whether the table was dropped at the position.
    pub(crate) fn is_dropped(&self) -> bool {
        self.dropped == Some(true)
    }

    /// Why the table must be re-read through a fresh snapshot, when it must.
    pub(crate) fn resnapshot_reason(&self) -> Option<&str> {
        self.resnapshot.as_deref()
    }

    /// Only the position of `start` (the in-progress bookmark of an initial load).
    pub(super) fn starting_at(start: Option<&BinlogStart>) -> BinlogBookmark {
        let Some(s) = start else {
            return BinlogBookmark::default();
        };
        BinlogBookmark {
            log_file: Some(s.log_file.clone()),
            log_pos: Some(s.log_pos),
            gtid: s.gtid.clone(),
            columns: s.columns.clone(),
            dropped: None,
            resnapshot: None,
        }
    }

    /// Moves to `start` (the keys it has).
    pub(super) fn move_to(&mut self, start: &BinlogStart) {
        self.log_file = Some(start.log_file.clone());
        self.log_pos = Some(start.log_pos);
        if let Some(g) = &start.gtid {
            self.gtid = Some(g.clone());
        }
        if let Some(c) = &start.columns {
            self.columns = Some(c.clone());
        }
    }
}

/// Where a LOG_BASED stream reads the binlog from once its initial load is done: kept in
/// every bookmark of the load, so an interrupted load resumed later still starts at the
/// first snapshot's position.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct BinlogStart {
    log_file: String,
    log_pos: u64,
    gtid: Option<String>,
    columns: Option<Vec<String>>,
}

impl BinlogStart {
    /// A snapshot's position, with its GTID position when known and the table's columns then.
    pub(crate) fn new(
        log_file: String,
        log_pos: u64,
        gtid: Option<String>,
        columns: Vec<String>,
    ) -> BinlogStart {
        BinlogStart {
            log_file,
            log_pos,
            gtid,
            columns: Some(columns),
        }
    }

    /// The one a bookmark has (an interrupted load's), when it has a position.
    pub(super) fn of(b: &BinlogBookmark) -> Option<BinlogStart> {
        let (file, pos) = b.position()?;
        Some(BinlogStart {
            log_file: file.to_string(),
            log_pos: pos,
            gtid: b.gtid.clone(),
            columns: b.columns.clone(),
        })
    }
}

/// A transaction boundary of the binlog read, for one stream: where, and what the reader
/// knows of the table there.
#[derive(Clone, Debug)]
pub(crate) struct BinlogAt<'a> {
    /// The binlog file.
    pub(crate) file: &'a str,
    /// The offset in it.
    pub(crate) pos: u64,
    /// The GTID position there (None: the bookmark keeps its own).
    pub(crate) gtid: Option<String>,
    /// The table's column order there (None: it could not be followed).
    pub(crate) columns: Option<Vec<String>>,
    /// The table version there (None: the bookmark keeps its own).
    pub(crate) version: Option<u64>,
    /// Whether the table is dropped there.
    pub(crate) dropped: bool,
}
