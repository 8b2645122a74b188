//! Integration tests: one binary, so one private MariaDB server serves them all.

#[path = "../support/mod.rs"]
mod support;

mod batch;
mod cdc;
mod cdc_decoder;
mod cdc_exact;
mod cdc_gtid;
mod cdc_pipeline;
mod cdc_types;
mod check;
mod cli_errors;
mod discover;
mod faults;
mod guest;
mod harness;
mod hostile;
mod many_streams;
mod model_target;
mod mysql_events;
mod parallel;
mod privileges;
mod recorded;
mod robustness;
mod signals;
mod ssh;
mod sync;
mod tls;
