//! Everything that talks to the server.

pub mod connect;
pub mod errors;
pub mod query;
pub mod snapshot;
