//! LOG_BASED replication (binlog change data capture): positions and event decoding.
//!
//! `reader` streams events into RECORDs and bookmarks for the `stream`s it serves; `ddl` works
//! out what a statement changes; `dump` owns the replication connection; `values` and
//! `geojson` turn binlog values into what the snapshot path emits; `gtid` and `mariadb` handle
//! positions and the MariaDB-only events; `purge` finds bookmarks whose binlog is gone.

pub(crate) mod ddl;
pub(crate) mod dump;
pub(crate) mod geojson;
pub(crate) mod gtid;
pub(crate) mod mariadb;
pub(crate) mod purge;
pub(crate) mod reader;
pub(crate) mod stream;
pub(crate) mod values;
