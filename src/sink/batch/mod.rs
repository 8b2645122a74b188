//! BATCH messages: rows go into files (JSONL or Parquet) and a Meltano SDK `BATCH` message
//! points at each finished file.
//!
//! Promises:
//! - A file is written as `<name>.partial`, closed, fsynced, renamed to its final `<name>` and
//!   the directory fsynced before its BATCH message is sent; the bookmark covering its rows is
//!   sent only after that message. A run that stops for a signal or fails removes its
//!   unfinished `.partial` file; its state re-reads those rows.
//! - No finished file outlives a killed run (SIGKILL, OOM, power loss) without its BATCH
//!   message unless it is marked: an empty `<name>.unsent` is created (and made durable)
//!   before the rename and removed only after the BATCH message was written and flushed to
//!   stdout, before any STATE covering the file. So a file with a marker was never covered by a
//!   STATE: the next run of the stream removes it with its marker (and any `.partial`) and
//!   reads its rows again. A file without a marker was announced and is never touched.
//! - The message's `encoding` always describes the file exactly: JSONL is gzip only when the
//!   message says gzip; Parquet's compression is internal to the file.
//! - Parquet columns are typed from the SQL type, never guessed from values (see `parquet.rs`).

pub(crate) mod jsonl;
pub(crate) mod parquet;

use std::fs::File;
use std::path::{Path, PathBuf};

use serde_json::json;

use crate::config::{BatchCompression, BatchConfig, BatchFormat};
use crate::encode::ColumnWarnings;
use crate::error::{Error, Result};
use crate::plan::StreamPlan;
use crate::source::wire::Cells;

/// Checks the storage root before any query: created if missing, must be writable.
pub(crate) fn prepare_root(cfg: &BatchConfig) -> Result<()> {
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

const PARTIAL: &str = ".partial";
const UNSENT: &str = ".unsent";

/// Removes the files an interrupted earlier run left for `stream` without a BATCH message:
/// `.partial` files, and finished files marked `.unsent` (with their marker, the marker last).
/// Never anything else: only names this tap gives, for this stream and prefix. Their rows were
/// never covered by a STATE, so the resumed run reads them again. Call it before the run writes
/// any file of the stream.
pub(crate) fn discard_unannounced(cfg: &BatchConfig, stream: &str) -> Result<()> {
    let start = format!("{}{}-", cfg.prefix, file_safe(stream));
    let entries = std::fs::read_dir(&cfg.root)
        .map_err(|e| Error::io(format!("reading batch directory {}", cfg.root.display()), e))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        match leftover(&name, &start) {
            Some(PARTIAL) => {
                log::info!(
                    "stream '{stream}': removing {name}, left unfinished by an interrupted run"
                );
                remove_if_present(&entry.path())?;
            }
            Some(UNSENT) => {
                let file = &name[..name.len() - UNSENT.len()];
                log::info!("stream '{stream}': removing {file}: an interrupted run finished it but no STATE covers it (its BATCH message may not have been written)");
                remove_if_present(&cfg.root.join(file))?;
                remove_if_present(&entry.path())?;
            }
            _ => {}
        }
    }
    Ok(())
}

fn remove_if_present(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::io(format!("removing {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// Whether `name` is an unfinished file (`.partial`) or the marker of an unannounced one
/// (`.unsent`) that this tap gave a file of the stream whose names begin with `start`: the
/// rest must be `<millis>-<pid>-<sink>-<seq>.<extension><suffix>`, so another stream whose
/// name merely begins the same way never matches.
fn leftover(name: &str, start: &str) -> Option<&'static str> {
    let rest = name.strip_prefix(start)?;
    let (body, suffix) = [PARTIAL, UNSENT]
        .into_iter()
        .find_map(|s| Some((rest.strip_suffix(s)?, s)))?;
    let (numbers, extension) = body.split_once('.')?;
    let groups: Vec<&str> = numbers.split('-').collect();
    let numeric = |g: &&str| !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit());
    (groups.len() == 4 && groups.iter().all(numeric) && !extension.is_empty()).then_some(suffix)
}

/// A finished, renamed batch file whose BATCH message is still to be written.
pub(crate) struct FinishedFile {
    message: Vec<u8>,
    marker: PathBuf,
}

impl FinishedFile {
    /// The BATCH message line.
    pub(crate) fn message(&self) -> &[u8] {
        &self.message
    }

    /// Called once the message was written and flushed: removes the file's `.unsent` marker
    /// (durably), so the next run keeps the file.
    pub(crate) fn announced(self) -> Result<()> {
        let ctx = |e| {
            Error::io(
                format!("removing batch marker {}", self.marker.display()),
                e,
            )
        };
        std::fs::remove_file(&self.marker).map_err(ctx)?;
        match self.marker.parent() {
            Some(dir) => sync_dir(dir).map_err(ctx),
            None => Ok(()),
        }
    }
}

/// The names of one batch file.
struct FilePaths {
    /// While it is written.
    partial: PathBuf,
    /// Once finished.
    done: PathBuf,
    /// Exists from before the rename until its BATCH message is out.
    marker: PathBuf,
}

impl FilePaths {
    fn new(root: &Path, name: &str) -> Self {
        FilePaths {
            partial: root.join(format!("{name}{PARTIAL}")),
            done: root.join(name),
            marker: root.join(format!("{name}{UNSENT}")),
        }
    }
}

/// One open batch file.
enum Open {
    Jsonl(jsonl::JsonlFile),
    Parquet(Box<parquet::ParquetFile>),
}

/// Writes a stream's rows into a sequence of batch files.
pub(crate) struct BatchSink<'a> {
    cfg: &'a BatchConfig,
    plan: &'a StreamPlan,
    stem: String,
    seq: u32,
    open: Option<(Open, FilePaths)>,
    rows_in_file: u64,
}

impl<'a> BatchSink<'a> {
    /// A sink for `plan`'s rows (one per stream or chunk being read).
    pub(crate) fn new(cfg: &'a BatchConfig, plan: &'a StreamPlan) -> Self {
        static SINKS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = SINKS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let millis = crate::singer::time::now_millis();
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

    /// Whether the current file reached `batch_size`.
    pub(crate) fn full(&self) -> bool {
        self.rows_in_file >= self.cfg.batch_size
    }

    /// Appends one row.
    pub(crate) fn append(
        &mut self,
        row: &impl Cells,
        warnings: &mut [ColumnWarnings],
    ) -> Result<()> {
        if self.open.is_none() {
            self.open_file()?;
        }
        let ctx = |e: std::io::Error| {
            Error::io(
                format!("stream '{}': writing a batch file", self.plan.stream_id),
                e,
            )
        };
        if let Some((file, _)) = &mut self.open {
            match file {
                Open::Jsonl(f) => f.append(row, warnings).map_err(ctx)?,
                Open::Parquet(f) => f.append(row, warnings)?,
            }
        }
        self.rows_in_file += 1;
        Ok(())
    }

    /// The names of the next file.
    fn next_paths(&mut self) -> FilePaths {
        self.seq += 1;
        let ext = match (self.cfg.format, self.cfg.compression) {
            (BatchFormat::Jsonl, BatchCompression::Gzip) => "jsonl.gz",
            (BatchFormat::Jsonl, _) => "jsonl",
            (BatchFormat::Parquet, _) => "parquet",
        };
        let name = format!("{}-{:05}.{ext}", self.stem, self.seq);
        FilePaths::new(&self.cfg.root, &name)
    }

    fn open_file(&mut self) -> Result<()> {
        let paths = self.next_paths();
        let file = File::create(&paths.partial).map_err(|e| {
            Error::io(
                format!(
                    "stream '{}': creating batch file {}",
                    self.plan.stream_id,
                    paths.partial.display()
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
        self.open = Some((open, paths));
        self.rows_in_file = 0;
        Ok(())
    }

    /// Closes, syncs and publishes the current file (marked unsent until the writer has written
    /// its BATCH message); returns it for the writer.
    pub(crate) fn finish_file(&mut self) -> Result<Option<FinishedFile>> {
        let Some((open, paths)) = self.open.take() else {
            return Ok(None);
        };
        let id = &self.plan.stream_id;
        let ctx = |what: &str, e: std::io::Error| {
            Error::io(
                format!(
                    "stream '{id}': {what} batch file {}",
                    paths.partial.display()
                ),
                e,
            )
        };
        let file = match open {
            Open::Jsonl(f) => f.finish().map_err(|e| ctx("closing", e))?,
            Open::Parquet(f) => f.finish()?,
        };
        file.sync_all().map_err(|e| ctx("syncing", e))?;
        drop(file);
        File::create(&paths.marker).map_err(|e| ctx("marking", e))?;
        sync_dir(&self.cfg.root).map_err(|e| ctx("syncing the directory of", e))?;
        std::fs::rename(&paths.partial, &paths.done).map_err(|e| ctx("renaming", e))?;
        sync_dir(&self.cfg.root).map_err(|e| ctx("syncing the directory of", e))?;
        self.rows_in_file = 0;
        let url = format!("file://{}", paths.done.display());
        let msg = json!({
            "type": "BATCH",
            "stream": id,
            "encoding": {"format": self.cfg.format.name(), "compression": self.cfg.compression.name()},
            "manifest": [url],
        });
        let mut message = serde_json::to_vec(&msg).unwrap_or_default();
        message.push(b'\n');
        Ok(Some(FinishedFile {
            message,
            marker: paths.marker,
        }))
    }
}

impl Drop for BatchSink<'_> {
    fn drop(&mut self) {
        // A file still open here was not finished: its rows are not covered by any state.
        if let Some((_, paths)) = self.open.take() {
            let _ = std::fs::remove_file(paths.partial);
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
    use crate::catalog::types::ColumnKind;
    use crate::encode::Encoder;
    use crate::plan::PlannedColumn;

    fn plan() -> StreamPlan {
        let id = PlannedColumn {
            name: "id".into(),
            kind: ColumnKind::Integer {
                width: crate::catalog::types::IntWidth::Int,
                unsigned: false,
            },
            encoder: Encoder::Number,
            select_expr: "`id`".into(),
        };
        StreamPlan::for_test("t", vec![id], None)
    }

    fn config(root: &Path, format: BatchFormat, compression: BatchCompression) -> BatchConfig {
        BatchConfig {
            format,
            compression,
            root: root.to_path_buf(),
            prefix: "p-".into(),
            batch_size: 10,
        }
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut n: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    }

    /// Every name of one file's life: `<name>.partial` while written, `<name>` plus the
    /// `<name>.unsent` marker once finished, `<name>` alone once announced.
    #[test]
    fn a_file_is_partial_then_marked_then_announced() {
        let cases = [
            (BatchFormat::Jsonl, BatchCompression::Gzip, "jsonl.gz"),
            (BatchFormat::Jsonl, BatchCompression::None, "jsonl"),
            (BatchFormat::Parquet, BatchCompression::Zstd, "parquet"),
        ];
        for (format, compression, ext) in cases {
            let dir = tempfile::tempdir().unwrap();
            let cfg = config(dir.path(), format, compression);
            let plan = plan();
            let mut sink = BatchSink::new(&cfg, &plan);
            sink.open_file().unwrap();
            let name = format!("{}-00001.{ext}", sink.stem);
            assert!(name.starts_with("p-db-t-"), "{name}");
            assert_eq!(names(dir.path()), [format!("{name}.partial")]);
            let file = sink.finish_file().unwrap().unwrap();
            assert_eq!(names(dir.path()), [name.clone(), format!("{name}.unsent")]);
            let message: serde_json::Value = serde_json::from_slice(file.message()).unwrap();
            let url = format!("file://{}", dir.path().join(&name).display());
            assert_eq!(message["manifest"], serde_json::json!([url]));
            file.announced().unwrap();
            assert_eq!(names(dir.path()), [name]);
        }
    }

    #[test]
    fn leftovers_are_only_this_streams_unannounced_files() {
        let start = "p-db-t-";
        let ok = "p-db-t-1700000000000-42-0-00003.jsonl.gz";
        assert_eq!(leftover(&format!("{ok}.partial"), start), Some(PARTIAL));
        assert_eq!(leftover(&format!("{ok}.unsent"), start), Some(UNSENT));
        assert_eq!(leftover(ok, start), None, "an announced file");
        // Another stream whose name begins the same way ("db-t-1", "db-t-x").
        for other in [
            "p-db-t-1-1700000000000-42-0-00003.jsonl.partial",
            "p-db-t-x-1700000000000-42-0-00003.jsonl.unsent",
            "p-db-t-1700000000000-42-0.jsonl.partial",
            "p-db-t-.partial",
            "other.partial",
        ] {
            assert_eq!(leftover(other, start), None, "{other}");
        }
    }

    #[test]
    fn discarding_removes_unannounced_files_and_keeps_announced_ones() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), BatchFormat::Jsonl, BatchCompression::None);
        let stem = "p-db-t-1700000000000-42-0";
        let keep = [
            format!("{stem}-00001.jsonl"),
            "p-db-t-1-1700000000000-42-0-00001.jsonl.partial".to_string(),
            "notes.txt".to_string(),
        ];
        let gone = [
            format!("{stem}-00002.jsonl"),
            format!("{stem}-00002.jsonl.unsent"),
            format!("{stem}-00003.jsonl.unsent"), // killed before its rename
            format!("{stem}-00003.jsonl.partial"),
        ];
        for n in keep.iter().chain(&gone) {
            std::fs::write(dir.path().join(n), b"x").unwrap();
        }
        discard_unannounced(&cfg, "db-t").unwrap();
        let mut expected = keep.to_vec();
        expected.sort();
        assert_eq!(names(dir.path()), expected);
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(file_safe("db-orders"), "db-orders");
        let w = file_safe("db-weird`name/x");
        assert!(w.starts_with("db-weird_name_x-"), "{w}");
        assert_ne!(file_safe("a b"), file_safe("a_b"));
    }
}
