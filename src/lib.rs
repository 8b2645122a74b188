//! tap-mysql: a Singer tap for MySQL and MariaDB.
//!
//! Layout (see ARCHITECTURE.md): `config` and `cli` take input, `source` talks to the server,
//! `catalog` discovers and maps types, `singer` speaks the protocol, `run` ties them together.

pub mod about;
pub mod catalog;
pub mod cdc;
pub mod cli;
pub mod config;
pub mod encode;
pub mod error;
pub mod interrupt;
pub mod logging;
pub mod plan;
pub mod read;
pub mod run;
pub mod singer;
pub mod sink;
pub mod source;

pub use error::{Error, Result};
