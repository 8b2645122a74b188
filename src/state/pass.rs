//! The full table pass: which FULL_TABLE streams a run that was interrupted already finished,
//! so the run that resumes it does not read them again.
//!
//! A run records the moment its pass started as the top-level state key `full_table_pass`
//! (milliseconds since the epoch), in every STATE line it writes once a load completed, and
//! removes it once every load of the run completed (before the binlog phase of LOG_BASED
//! streams: a stop there leaves no pass). Every full table load of the pass gets a `version` of at least
//! that moment, and the pass starts after every version already in the state. A state that
//! still holds `full_table_pass` therefore comes from a run that stopped during its loads (a
//! signal, a kill, an error), and a stream whose bookmark says its load completed with a version of at
//! least the pass start was finished by that run: its completion was in a STATE line, after
//! all of its records. The next run resumes that pass: it skips those streams, reads the
//! others (resuming a load under way after its last key, as always) and then completes the
//! pass. The run after it starts a new pass and reads every stream again.

use serde_json::Value;

use super::{Bookmark, State};

/// The top-level state key.
pub(crate) const KEY: &str = "full_table_pass";

/// The pass a run belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FullTablePass {
    /// When it started (milliseconds since the epoch); every load of the pass has a version at
    /// least this.
    pub(crate) start: u64,
    /// The pass was begun by an earlier run that did not complete it.
    pub(crate) resumed: bool,
}

impl FullTablePass {
    /// The pass of a run starting at `now` from `state`: the interrupted one it holds, else a
    /// new one that starts after every table version in it.
    pub(crate) fn begin(state: &State, now: u64) -> FullTablePass {
        match state.full_table_pass() {
            Some(start) => FullTablePass {
                start,
                resumed: true,
            },
            None => FullTablePass {
                start: state
                    .max_version()
                    .map_or(now, |v| now.max(v.saturating_add(1))),
                resumed: false,
            },
        }
    }

    /// Whether this (resumed) pass already completed the load of the stream with `bookmark`.
    pub(crate) fn finished(&self, bookmark: &Bookmark) -> bool {
        let load = bookmark.full_table();
        self.resumed
            && load.initial_load_complete()
            && !load.started()
            && bookmark.version().is_some_and(|v| v >= self.start)
    }
}

impl State {
    /// The start of the full table pass an earlier run did not complete.
    pub(crate) fn full_table_pass(&self) -> Option<u64> {
        self.top_level(KEY).and_then(Value::as_u64)
    }

    /// Records the run's pass (None: the pass completed, the key goes).
    pub(crate) fn set_full_table_pass(&mut self, pass: Option<u64>) {
        self.set_top_level(KEY, pass.map(Value::from));
    }
}
