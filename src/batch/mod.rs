//! BATCH messages: rows go into files (JSONL or Parquet) and a Meltano SDK `BATCH` message
//! points at each finished file.
//!
//! Promises:
//! - A file is written as `<name>.partial`, closed, fsynced, renamed to its final name and the
//!   directory fsynced before its BATCH message is sent; the bookmark covering its rows is sent
//!   only after that message. An interruption mid-file leaves at most a `.partial` file (removed
//!   when the run fails normally) and a state that re-reads those rows.
//! - The message's `encoding` always describes the file exactly: JSONL is gzip only when the
//!   message says gzip; Parquet's compression is internal to the file.
//! - Parquet columns are typed from the SQL type, never guessed from values (see `parquet.rs`).

pub mod jsonl;
pub mod parquet;

use std::fs::File;
use std::path::{Path, PathBuf};

use mysql::Row;
use serde_json::json;

use crate::config::{BatchCompression, BatchConfig, BatchFormat};
use crate::encode::ColumnWarnings;
use crate::error::{Error, Result};
use crate::sync::plan::StreamPlan;

/// Checks the storage root before any query: created if missing, must be writable.
pub fn prepare_root(cfg: &BatchConfig) -> Result<()> {
    std::fs::create_dir_all(&cfg.root).map_err(|e| {
        Error::usage(format!(
            "batch_config.storage.root {} cannot be created: {e}",
            cfg.root.display()
        ))
    })?;
    let probe = cfg
        .root
        .join(format!(".tap-mysql-probe-{}", std::process::id()));
    File::create(&probe)
        .and_then(|_| std::fs::remove_file(&probe))
        .map_err(|e| {
            Error::usage(format!(
                "batch_config.storage.root {} is not writable: {e}",
                cfg.root.display()
            ))
        })
}

/// Removes `.partial` files an interrupted earlier run left for `stream` (never anything else:
/// only names this tap gives, for this stream and prefix). Their rows were never covered by a
/// STATE, so the resumed run reads them again.
pub fn discard_partials(cfg: &BatchConfig, stream: &str) -> Result<()> {
    let start = format!("{}{}-", cfg.prefix, file_safe(stream));
    let entries = std::fs::read_dir(&cfg.root)
        .map_err(|e| Error::io(format!("reading batch directory {}", cfg.root.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&start) && name.ends_with(".partial") {
            log::info!("stream '{stream}': removing {name}, left unfinished by an interrupted run");
            std::fs::remove_file(entry.path())
                .map_err(|e| Error::io(format!("removing {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}

/// One open batch file.
enum Open {
    Jsonl(jsonl::JsonlFile),
    Parquet(Box<parquet::ParquetFile>),
}

/// Writes a stream's rows into a sequence of batch files.
pub struct BatchSink<'a> {
    cfg: &'a BatchConfig,
    plan: &'a StreamPlan,
    stem: String,
    seq: u32,
    open: Option<(Open, PathBuf, PathBuf)>,
    rows_in_file: u64,
}

impl<'a> BatchSink<'a> {
    /// A sink for `plan`'s rows (one per stream or chunk being read).
    pub fn new(cfg: &'a BatchConfig, plan: &'a StreamPlan) -> Self {
        static SINKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SINKS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let millis = crate::sync::full_table::now_millis();
        let stem = format!(
            "{}{}-{millis}-{}-{n}",
            cfg.prefix,
            file_safe(&plan.stream_id),
            std::process::id()
        );
        BatchSink {
            cfg,
            plan,
            stem,
            seq: 0,
            open: None,
            rows_in_file: 0,
        }
    }

    /// Rows in the file being written.
    pub fn rows_in_file(&self) -> u64 {
        self.rows_in_file
    }

    /// Whether the current file reached `batch_size`.
    pub fn full(&self) -> bool {
        self.rows_in_file >= self.cfg.batch_size
    }

    /// Appends one row.
    pub fn append(&mut self, row: &Row, warnings: &mut [ColumnWarnings]) -> Result<()> {
        if self.open.is_none() {
            self.open_file()?;
        }
        let ctx = |e: std::io::Error| {
            Error::io(
                format!("stream '{}': writing a batch file", self.plan.stream_id),
                e,
            )
        };
        if let Some((file, _, _)) = &mut self.open {
            match file {
                Open::Jsonl(f) => f.append(row, warnings).map_err(ctx)?,
                Open::Parquet(f) => f.append(row, warnings)?,
            }
        }
        self.rows_in_file += 1;
        Ok(())
    }

    fn open_file(&mut self) -> Result<()> {
        self.seq += 1;
        let ext = match (self.cfg.format, self.cfg.compression) {
            (BatchFormat::Jsonl, BatchCompression::Gzip) => "jsonl.gz",
            (BatchFormat::Jsonl, _) => "jsonl",
            (BatchFormat::Parquet, _) => "parquet",
        };
        let final_path = self
            .cfg
            .root
            .join(format!("{}-{:05}.{ext}", self.stem, self.seq));
        let partial = final_path.with_extension(format!("{ext}.partial"));
        let file = File::create(&partial).map_err(|e| {
            Error::io(
                format!(
                    "stream '{}': creating batch file {}",
                    self.plan.stream_id,
                    partial.display()
                ),
                e,
            )
        })?;
        let open = match self.cfg.format {
            BatchFormat::Jsonl => {
                Open::Jsonl(jsonl::JsonlFile::new(file, self.plan, self.cfg.compression))
            }
            BatchFormat::Parquet => Open::Parquet(Box::new(parquet::ParquetFile::new(
                file,
                self.plan,
                self.cfg.compression,
            )?)),
        };
        self.open = Some((open, partial, final_path));
        self.rows_in_file = 0;
        Ok(())
    }

    /// Closes, syncs and publishes the current file; returns its BATCH message line.
    pub fn finish_file(&mut self) -> Result<Option<Vec<u8>>> {
        let Some((open, partial, final_path)) = self.open.take() else {
            return Ok(None);
        };
        let id = &self.plan.stream_id;
        let ctx = |what: &str, e: std::io::Error| {
            Error::io(
                format!("stream '{id}': {what} batch file {}", partial.display()),
                e,
            )
        };
        let file = match open {
            Open::Jsonl(f) => f.finish().map_err(|e| ctx("closing", e))?,
            Open::Parquet(f) => f.finish()?,
        };
        file.sync_all().map_err(|e| ctx("syncing", e))?;
        drop(file);
        std::fs::rename(&partial, &final_path).map_err(|e| ctx("renaming", e))?;
        sync_dir(&self.cfg.root).map_err(|e| ctx("syncing the directory of", e))?;
        self.rows_in_file = 0;
        let url = format!("file://{}", final_path.display());
        let msg = json!({
            "type": "BATCH",
            "stream": id,
            "encoding": {"format": self.cfg.format.name(), "compression": self.cfg.compression.name()},
            "manifest": [url],
        });
        let mut line = serde_json::to_vec(&msg).unwrap_or_default();
        line.push(b'\n');
        Ok(Some(line))
    }
}

impl Drop for BatchSink<'_> {
    fn drop(&mut self) {
        // A file still open here was not finished: its rows are not covered by any state.
        if let Some((_, partial, _)) = self.open.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A stream id made safe for a file name, with a hash suffix when characters were replaced.
fn file_safe(s: &str) -> String {
    let clean: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean == s {
        clean
    } else {
        let h = s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100000001b3)
        });
        format!("{clean}-{:08x}", h as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("db-orders"), "db-orders");
        let w = file_safe("db-weird`name/x");
        assert!(w.starts_with("db-weird_name_x-"), "{w}");
        assert_ne!(file_safe("a b"), file_safe("a_b"));
    }
}
