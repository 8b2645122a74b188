//! The snapshot readers: FULL_TABLE (whole tables or key-range chunks), INCREMENTAL, and the
//! row loop they share. Each reads on a connection it is given and sends encoded messages to
//! the sink; `crate::run` decides what is read, on which connection, in which order.

pub mod bookmark;
pub mod chunk;
pub mod full_table;
pub mod incremental;
pub mod progress;
pub mod rows;
