//! LOG_BASED replication (binlog change data capture): positions and event decoding.
//!
//! `reader` streams events into RECORDs and bookmarks for the `stream`s it serves; `ddl` works
//! out what a statement changes; `dump` owns the replication connection; `values` and
//! `geojson` turn binlog values into what the snapshot path emits; `gtid` and `mariadb` handle
//! positions and the MariaDB-only events; `purge` finds bookmarks whose binlog is gone.

pub mod ddl;
pub mod dump;
pub mod geojson;
pub mod gtid;
pub mod mariadb;
pub mod purge;
pub mod reader;
pub mod stream;
pub mod values;
