//! LOG_BASED replication (binlog change data capture): positions and event decoding.
//!
//! `reader` streams row events into RECORDs and bookmarks; `values` and `geojson` turn binlog
//! values into what the snapshot path emits; `gtid` and `mariadb` handle positions and the
//! MariaDB-only events.

pub mod ddl;
pub mod geojson;
pub mod gtid;
pub mod mariadb;
pub mod reader;
pub mod values;
