//! Singer STATE and the bookmarks in it, typed, in pipelinewise-tap-mysql's JSON shape.
//!
//! `document`: the state file (`currently_syncing`, `bookmarks` of every stream, carried
//! through untouched for streams not in the run). `bookmark`: one stream's bookmark, made of
//! the keys of a full table load (`full_table`), of INCREMENTAL (`incremental`) and of
//! LOG_BASED (`binlog`), plus any keys this tap does not know, kept. `pass`: the full table pass
//! an interrupted run leaves for the next run to complete. Every change of a
//! bookmark is a method of these types; nothing else reads or writes bookmark JSON.

mod binlog;
mod bookmark;
mod document;
mod fields;
mod full_table;
mod incremental;
mod pass;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

pub(crate) use binlog::{BinlogAt, BinlogStart};
pub(crate) use bookmark::Bookmark;
pub use document::State;
pub(crate) use full_table::{next_version, ChunkProgress};
pub(crate) use pass::FullTablePass;

/// A row's key by column name (`max_pk_values`, `last_pk_fetched`), each value as
/// `read::bookmark` renders it.
pub(crate) type KeyValues = Map<String, Value>;
