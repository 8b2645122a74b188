//! The keys of a full table load (FULL_TABLE, and the initial load of LOG_BASED):
//!
//! - `version`: the table version its records carry (milliseconds since the epoch);
//! - while a load is under way, `max_pk_values` (the greatest key when it started: its upper
//!   bound) and `last_pk_fetched` (the last key written), or `chunks` for a table read in key
//!   ranges by several workers: each `{"lo", "hi"}` (null: open) with `"done": true` or its own
//!   `last_pk_fetched`;
//! - once one completed, `initial_full_table_complete: true`.

use serde_json::{json, Map, Value};

use super::fields::{wrong, Fields};
use super::KeyValues;

/// A table version after `old`: `now` (milliseconds since the epoch), or `old + 1` when that
/// is later (a TRUNCATE in the binlog may have moved it past the clock).
pub(crate) fn next_version(old: Option<u64>, now: u64) -> u64 {
    now.max(old.map_or(0, |v| v.saturating_add(1)))
}

/// The full table load keys of a bookmark.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct FullTableBookmark {
    pub(super) version: Option<u64>,
    pub(super) initial_full_table_complete: Option<bool>,
    pub(super) max_pk_values: Option<KeyValues>,
    pub(super) last_pk_fetched: Option<KeyValues>,
    pub(super) chunks: Option<Vec<ChunkProgress>>,
}

impl FullTableBookmark {
    /// The keys this part owns.
    pub(super) const KEYS: [&'static str; 5] = [
        "version",
        "max_pk_values",
        "last_pk_fetched",
        "chunks",
        "initial_full_table_complete",
    ];

    pub(super) fn read(f: &mut Fields) -> Result<FullTableBookmark, String> {
        let chunks = match f.array("chunks")? {
            None => None,
            Some(list) => Some(
                list.into_iter()
                    .map(ChunkProgress::read)
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(FullTableBookmark {
            version: f.u64("version")?,
            initial_full_table_complete: f.bool("initial_full_table_complete")?,
            max_pk_values: f.object("max_pk_values")?,
            last_pk_fetched: f.object("last_pk_fetched")?,
            chunks,
        })
    }

    /// The JSON value of one of [`Self::KEYS`], when set.
    pub(super) fn value(&self, key: &str) -> Option<Value> {
        match key {
            "version" => self.version.map(Value::from),
            "initial_full_table_complete" => self.initial_full_table_complete.map(Value::Bool),
            "max_pk_values" => self.max_pk_values.clone().map(Value::Object),
            "last_pk_fetched" => self.last_pk_fetched.clone().map(Value::Object),
            "chunks" => self
                .chunks
                .as_ref()
                .map(|c| Value::Array(c.iter().map(ChunkProgress::to_value).collect())),
            _ => None,
        }
    }

    /// Whether a full load of the stream ever completed.
    pub(crate) fn initial_load_complete(&self) -> bool {
        self.initial_full_table_complete.unwrap_or(false)
    }

    /// Whether a load was interrupted and resumes: `max_pk_values` or `last_pk_fetched`.
    pub(crate) fn in_progress(&self) -> bool {
        self.max_pk_values.is_some() || self.last_pk_fetched.is_some()
    }

    /// Whether any key of a load under way is there (`chunks` too).
    pub(crate) fn started(&self) -> bool {
        self.in_progress() || self.chunks.is_some()
    }

    /// The version of a load starting now: an interrupted load keeps its own (its final
    /// ACTIVATE_VERSION then never deletes rows written before the interruption), else a
    /// new one, greater than the last.
    /// A new load's version is also at least `pass_start` (the run's full table pass).
    pub(crate) fn load_version(&self, now: u64, pass_start: u64) -> u64 {
        match self.version {
            Some(v) if self.in_progress() => v,
            old => next_version(old, now).max(pass_start),
        }
    }

    /// The greatest key when the load started.
    pub(crate) fn max_pk_values(&self) -> Option<&KeyValues> {
        self.max_pk_values.as_ref()
    }

    /// The last key written by an unchunked load.
    pub(crate) fn last_pk_fetched(&self) -> Option<&KeyValues> {
        self.last_pk_fetched.as_ref()
    }

    /// The chunks of a chunked load.
    pub(crate) fn chunks(&self) -> Option<&[ChunkProgress]> {
        self.chunks.as_deref()
    }
}

/// One key range of a chunked load, with its progress.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ChunkProgress {
    lo: Option<Value>,
    hi: Option<Value>,
    done: bool,
    last_pk_fetched: Option<KeyValues>,
}

impl ChunkProgress {
    /// The range `lo < key1 <= hi` (None: open), done or resuming after `after`.
    pub(crate) fn new(
        lo: Option<Value>,
        hi: Option<Value>,
        done: bool,
        after: Option<KeyValues>,
    ) -> ChunkProgress {
        ChunkProgress {
            lo,
            hi,
            done,
            last_pk_fetched: if done { None } else { after },
        }
    }

    fn read(v: Value) -> Result<ChunkProgress, String> {
        let Value::Object(m) = v else {
            return Err(wrong("chunks", "an array of objects", &v));
        };
        let mut f = Fields::new(m);
        let lo = f.any("lo").filter(|v| !v.is_null());
        let hi = f.any("hi").filter(|v| !v.is_null());
        let done = f
            .bool("done")
            .map_err(|e| format!("in 'chunks': {e}"))?
            .unwrap_or(false);
        let after = f
            .object("last_pk_fetched")
            .map_err(|e| format!("in 'chunks': {e}"))?;
        Ok(ChunkProgress::new(lo, hi, done, after))
    }

    fn to_value(&self) -> Value {
        let mut c = Map::new();
        c.insert("lo".into(), self.lo.clone().unwrap_or(Value::Null));
        c.insert("hi".into(), self.hi.clone().unwrap_or(Value::Null));
        if self.done {
            c.insert("done".into(), json!(true));
        } else if let Some(a) = &self.last_pk_fetched {
            c.insert("last_pk_fetched".into(), Value::Object(a.clone()));
        }
        Value::Object(c)
    }

    /// The exclusive lower bound on the first key column (None: open).
    pub(crate) fn lo(&self) -> Option<&Value> {
        self.lo.as_ref()
    }

    /// The inclusive upper bound (None: open).
    pub(crate) fn hi(&self) -> Option<&Value> {
        self.hi.as_ref()
    }

    /// Whether every row of the range was written.
    pub(crate) fn done(&self) -> bool {
        self.done
    }

    /// The last key written in the range.
    pub(crate) fn last_pk_fetched(&self) -> Option<&KeyValues> {
        self.last_pk_fetched.as_ref()
    }

    /// Chunk progress: rows up to `key` were written.
    pub(crate) fn fetched_up_to(&mut self, key: KeyValues) {
        self.last_pk_fetched = Some(key);
    }

    /// Chunk done: every row of the range was written.
    pub(crate) fn finish(&mut self) {
        self.last_pk_fetched = None;
        self.done = true;
    }
}
