//! LOG_BASED replication (binlog change data capture): positions and event decoding.
//!
//! This module is being built up (see the issue on LOG_BASED replication): GTID positions for
//! MySQL and MariaDB and the MariaDB-only events are here; the reader that streams row events
//! into RECORDs comes next.

pub mod gtid;
pub mod mariadb;
pub mod reader;
pub mod values;
