//! tap-mysql: a Singer tap for MySQL and MariaDB.
//!
//! The layers (ARCHITECTURE.md; `scripts/check-structure` enforces them), bottom first:
//! `error`, `config`, `singer` and `state` (input and the protocol's values), `source` (the
//! server), `catalog` (discovery and type mapping), `encode` (values to JSON bytes), `plan`
//! (what each stream reads), `sink` (the RECORD writer and BATCH files), `read` (snapshot
//! readers) beside `cdc` (the binlog session), and `run` on top.
//!
//! The public surface is what the binary needs (`cli`, `run`, `error`, `logging`, `interrupt`)
//! plus `testing`, the internals the integration, fuzz and recorded-binlog tests drive.

// One `#[allow(unsafe_code)]`: borrowing a connection's socket descriptor (source::wire).
#![deny(unsafe_code)]
#![deny(missing_docs, unreachable_pub)]

mod about;
mod catalog;
mod cdc;
pub mod cli;
mod config;
mod encode;
pub mod error;
pub mod interrupt;
pub mod logging;
mod plan;
mod read;
mod run;
mod singer;
mod sink;
mod source;
mod state;

pub use error::{Error, Result};
pub use run::run;

/// Internals driven directly by the integration, fuzz and recorded-binlog tests. Not a stable
/// API: it changes with the code.
#[doc(hidden)]
pub mod testing {
    pub use crate::about::settings_table;
    pub use crate::catalog::types::{ColumnKind, IntWidth};
    pub use crate::cdc::ddl::{apply as apply_ddl, changes as ddl_changes, Change as DdlChange};
    pub use crate::cdc::dump::refused_event;
    pub use crate::cdc::geojson::from_internal as geojson_from_internal;
    pub use crate::cdc::gtid::{GtidState, MariadbGtidPos, MysqlGtidSet, TxnGtid};
    pub use crate::cdc::mariadb::gtid_event as mariadb_gtid_event;
    pub use crate::cdc::rows::{event_texts, ImageTexts, RowTexts};
    pub use crate::cdc::text::uuid_text;
    pub use crate::cdc::values::{text_bytes, ColumnDecoding};
    pub use crate::config::{Config, Flavor, TypeOptions, CONFIG_SCHEMA};
    pub use crate::encode::{encode_cell, ColumnWarnings, Encoder};
    pub use crate::singer::time::civil_from_days;
    pub use crate::state::State;
}
