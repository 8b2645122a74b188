//! One stream's bookmark: its full table load, INCREMENTAL and LOG_BASED keys, typed, plus
//! the keys this tap does not know (another tool's, a newer version's), kept as they are.
//!
//! The JSON shape is pipelinewise-tap-mysql's. Written back, a bookmark keeps its keys in the
//! order it had them; keys it gains follow, in the order of [`KEY_ORDER`]. A bookmark read and
//! written unchanged is the same text.
//!
//! A stream's bookmark may hold the keys of more than one method (a stream whose method
//! changed, LOG_BASED during its initial load): the transitions below say which keys each
//! step keeps.

use serde_json::{Map, Value};

use super::binlog::{BinlogAt, BinlogBookmark, BinlogStart};
use super::fields::Fields;
use super::full_table::{ChunkProgress, FullTableBookmark};
use super::incremental::IncrementalBookmark;
use super::KeyValues;

/// Where keys a bookmark gains go: after its own, in this order.
const KEY_ORDER: [&str; 13] = [
    "log_file",
    "log_pos",
    "gtid",
    "columns",
    "version",
    "max_pk_values",
    "last_pk_fetched",
    "chunks",
    "initial_full_table_complete",
    "replication_key",
    "replication_key_value",
    "resnapshot",
    "dropped",
];

/// A stream's bookmark. Equal bookmarks have the same keys and values, in any order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Bookmark {
    table: FullTableBookmark,
    incremental: IncrementalBookmark,
    binlog: BinlogBookmark,
    /// Keys this tap does not know, with their values.
    unknown: Map<String, Value>,
    /// The keys as read, in their order.
    layout: Vec<String>,
}

impl PartialEq for Bookmark {
    fn eq(&self, other: &Bookmark) -> bool {
        self.table == other.table
            && self.incremental == other.incremental
            && self.binlog == other.binlog
            && self.unknown == other.unknown
    }
}

impl Bookmark {
    /// Reads a bookmark object. The error names the key at fault.
    pub(crate) fn from_map(map: Map<String, Value>) -> Result<Bookmark, String> {
        let layout = map.keys().cloned().collect();
        let mut fields = Fields::new(map);
        let table = FullTableBookmark::read(&mut fields)?;
        let incremental = IncrementalBookmark::read(&mut fields)?;
        let binlog = BinlogBookmark::read(&mut fields)?;
        Ok(Bookmark {
            table,
            incremental,
            binlog,
            unknown: fields.rest(),
            layout,
        })
    }

    /// The bookmark object.
    pub(crate) fn to_map(&self) -> Map<String, Value> {
        let mut m = Map::new();
        for k in &self.layout {
            let v = if KEY_ORDER.contains(&k.as_str()) {
                self.known(k)
            } else {
                self.unknown.get(k).cloned()
            };
            if let Some(v) = v {
                m.insert(k.clone(), v);
            }
        }
        for k in KEY_ORDER {
            if !m.contains_key(k) {
                if let Some(v) = self.known(k) {
                    m.insert(k.to_string(), v);
                }
            }
        }
        m
    }

    /// The value of a known key, when set.
    fn known(&self, key: &str) -> Option<Value> {
        if FullTableBookmark::KEYS.contains(&key) {
            self.table.value(key)
        } else if IncrementalBookmark::KEYS.contains(&key) {
            self.incremental.value(key)
        } else if BinlogBookmark::KEYS.contains(&key) {
            self.binlog.value(key)
        } else {
            None
        }
    }

    /// Whether the stream has no bookmark at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.to_map().is_empty()
    }

    /// The full table load keys.
    pub(crate) fn full_table(&self) -> &FullTableBookmark {
        &self.table
    }

    /// The INCREMENTAL keys.
    pub(crate) fn incremental(&self) -> &IncrementalBookmark {
        &self.incremental
    }

    /// The LOG_BASED keys.
    pub(crate) fn binlog(&self) -> &BinlogBookmark {
        &self.binlog
    }

    /// The table version.
    pub(crate) fn version(&self) -> Option<u64> {
        self.table.version
    }

    /// Whether a LOG_BASED stream still needs (the rest of) its initial load: it has no
    /// binlog position to continue from, or a load is under way.
    pub(crate) fn needs_initial_load(&self) -> bool {
        self.binlog.position().is_none() || self.table.started()
    }

    /// Where the binlog read of a LOG_BASED stream continues after its initial load, when the
    /// bookmark already says (an interrupted load).
    pub(crate) fn binlog_start(&self) -> Option<BinlogStart> {
        BinlogStart::of(&self.binlog)
    }

    // Full table loads.

    /// Start of a full load (or its resumption): the bookmark while it runs, from this one
    /// (the stream's at the start of the run). It has `version`, `max_pk_values` (`{}` when
    /// the table is empty or has no key) and, for a LOG_BASED stream, the binlog `start`;
    /// of the rest only the keys this tap does not know stay. Progress goes in with
    /// [`Bookmark::fetched_up_to`] or [`Bookmark::set_chunks`].
    pub(crate) fn full_load(
        &self,
        version: u64,
        max_pk: Option<&KeyValues>,
        start: Option<&BinlogStart>,
    ) -> Bookmark {
        Bookmark {
            table: FullTableBookmark {
                version: Some(version),
                max_pk_values: Some(max_pk.cloned().unwrap_or_default()),
                ..FullTableBookmark::default()
            },
            incremental: IncrementalBookmark::default(),
            binlog: BinlogBookmark::starting_at(start),
            unknown: self.unknown.clone(),
            layout: self.layout.clone(),
        }
    }

    /// Progress of an unchunked load: every row up to `key` was written.
    pub(crate) fn fetched_up_to(&mut self, key: KeyValues) {
        self.table.last_pk_fetched = Some(key);
    }

    /// The chunks of a chunked load, with their progress.
    pub(crate) fn set_chunks(&mut self, chunks: Vec<ChunkProgress>) {
        self.table.chunks = Some(chunks);
    }

    /// Progress of chunk `index` of a chunked load: its last written key, or that it is done.
    /// Nothing happens when there is no such chunk.
    pub(crate) fn update_chunk(&mut self, index: usize, last_pk: Option<KeyValues>, done: bool) {
        let Some(chunk) = self.table.chunks.as_mut().and_then(|c| c.get_mut(index)) else {
            return;
        };
        if done {
            chunk.finish();
        } else if let Some(pk) = last_pk {
            chunk.fetched_up_to(pk);
        }
    }

    /// Load complete: from this bookmark (the stream's at the start of the run), the one
    /// with `version` and `initial_full_table_complete`, and for a LOG_BASED stream the binlog
    /// `start` to continue from. The load's progress, `resnapshot` and `dropped` go; other
    /// keys stay.
    pub(crate) fn load_complete(&self, version: u64, start: Option<&BinlogStart>) -> Bookmark {
        let mut b = self.clone();
        b.table = FullTableBookmark {
            version: Some(version),
            initial_full_table_complete: Some(true),
            ..FullTableBookmark::default()
        };
        b.binlog.dropped = None;
        b.binlog.resnapshot = None;
        if let Some(s) = start {
            b.binlog.move_to(s);
        }
        b
    }

    // INCREMENTAL.

    /// Start of an INCREMENTAL sync by `key`: a value of another replication key is dropped
    /// (returns true then: the sync starts from the beginning), and so are the keys of a full
    /// load under way (the stream's method changed).
    pub(crate) fn start_incremental(&mut self, key: &str) -> bool {
        let changed = self
            .incremental
            .replication_key
            .as_deref()
            .is_some_and(|k| k != key);
        if changed {
            self.incremental.replication_key_value = None;
        }
        self.incremental.replication_key = Some(key.to_string());
        self.table.last_pk_fetched = None;
        self.table.max_pk_values = None;
        changed
    }

    /// INCREMENTAL value advance: rows up to `value` were written.
    pub(crate) fn advance_replication_key(&mut self, value: Value) {
        self.incremental.replication_key_value = Some(value);
    }

    // LOG_BASED.

    /// Position advance: the bookmark at a transaction boundary of the binlog read, with the
    /// table's version, column order and whether it is dropped there.
    pub(crate) fn advanced(&self, at: BinlogAt<'_>) -> Bookmark {
        let mut b = self.clone();
        if let Some(v) = at.version {
            b.table.version = Some(v);
        }
        b.binlog.dropped = at.dropped.then_some(true);
        b.binlog.columns = at.columns;
        b.binlog.log_file = Some(at.file.to_string());
        b.binlog.log_pos = Some(at.pos);
        if let Some(g) = at.gtid {
            b.binlog.gtid = Some(g);
        }
        b
    }

    /// Resnapshot requested: no binlog position (so the next load reads the table again, with
    /// a new version and its own snapshot's position), `initial_full_table_complete` (no
    /// first-ever ACTIVATE_VERSION) and the reason; `version`, when given, is the table's now.
    pub(crate) fn resnapshot(&self, why: &str, version: Option<u64>) -> Bookmark {
        let mut b = self.clone();
        if let Some(v) = version {
            b.table.version = Some(v);
        }
        b.binlog.log_file = None;
        b.binlog.log_pos = None;
        b.binlog.gtid = None;
        b.binlog.columns = None;
        b.table.initial_full_table_complete = Some(true);
        b.binlog.resnapshot = Some(why.to_string());
        b
    }

    /// Table dropped between runs: a re-snapshot once it is back, under `version`, the new
    /// (empty) table version started downstream, and `dropped` so later runs do not start
    /// another.
    pub(crate) fn table_gone(&self, version: u64) -> Bookmark {
        let mut b = self.resnapshot("its table was dropped", Some(version));
        b.binlog.dropped = Some(true);
        b
    }
}
