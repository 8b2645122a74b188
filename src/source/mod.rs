//! Everything that talks to the server.

pub(crate) mod connect;
pub(crate) mod errors;
pub(crate) mod query;
pub(crate) mod snapshot;
