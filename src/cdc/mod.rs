//! LOG_BASED replication (binlog change data capture): positions and event decoding.
//!
//! `reader` streams events into RECORDs and bookmarks for the `stream`s it serves; `ddl` works
//! out what a statement changes; `dump` owns the replication connection; `rows` reads row
//! images straight from rows events, and `text` (with `values` and `geojson`) turns binlog
//! values into the bytes the snapshot path's encoders take; `gtid` and `mariadb` handle
//! positions and the MariaDB-only events; `purge` finds bookmarks whose binlog is gone.

pub(crate) mod ddl;
pub(crate) mod dump;
pub(crate) mod geojson;
pub(crate) mod gtid;
pub(crate) mod mariadb;
pub(crate) mod purge;
pub(crate) mod reader;
pub(crate) mod rows;
pub(crate) mod stream;
pub(crate) mod text;
pub(crate) mod values;
