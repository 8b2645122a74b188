//! Where encoded rows go: the RECORD writer (one thread owning stdout and the state) and the
//! BATCH files whose BATCH messages that writer sends.

pub(crate) mod batch;
pub(crate) mod record;
