//! Everything that talks to the server.

pub(crate) mod connect;
pub(crate) mod errors;
mod known_hosts;
pub(crate) mod query;
pub(crate) mod snapshot;
mod tunnel;
pub(crate) mod wire;
