//! The snapshot readers: FULL_TABLE (whole tables or key-range chunks), INCREMENTAL, and the
//! row loop they share. Each reads on a connection it is given and sends encoded messages to
//! the sink; `crate::run` decides what is read, on which connection, in which order.

pub(crate) mod bookmark;
pub(crate) mod chunk;
pub(crate) mod full_table;
pub(crate) mod incremental;
pub(crate) mod progress;
pub(crate) mod rows;
