//! Progress on stderr: a line per stream at its start (method, estimate, resume point, from the
//! readers), periodic progress (rows, rows/s, share of the estimate, ETA) at a readable cadence,
//! and at each stream's end a summary plus the Singer METRIC lines other taps print
//! (`record_count`, `job_duration`).
//!
//! A run of more than [`MANY_STREAMS`] streams logs its per-stream start and end lines at
//! `debug` and instead a periodic summary at `info` (streams done of all, rows, rows/s); the
//! METRIC lines stay per stream.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Live counters of one stream.
pub(crate) struct StreamProgress {
    /// Rows read so far.
    pub rows: AtomicU64,
    /// Bytes of Singer messages produced so far (RECORD mode).
    pub bytes: AtomicU64,
    /// Optimizer estimate of the total, when known.
    pub estimate: Option<u64>,
    started: Instant,
    done: AtomicBool,
}

/// Above this many streams in a run, per-stream lines go to `debug` and a summary is logged.
pub(crate) const MANY_STREAMS: usize = 200;

/// Every stream's counters, and the reporter thread.
#[derive(Default)]
pub(crate) struct Progress {
    streams: Mutex<BTreeMap<String, Arc<StreamProgress>>>,
    /// Streams the run reads (0: not told).
    expected: AtomicU64,
    /// Streams finished.
    finished: AtomicU64,
    /// Rows of finished streams.
    finished_rows: AtomicU64,
    /// When the run started reading.
    began: Mutex<Option<Instant>>,
}

impl Progress {
    /// The run reads `streams` more streams from now (a re-snapshot pass adds its own).
    pub(crate) fn expect(&self, streams: usize) {
        self.expected.fetch_add(streams as u64, Ordering::Relaxed);
        if let Ok(mut b) = self.began.lock() {
            b.get_or_insert_with(Instant::now);
        }
    }

    /// The level of per-stream start and end lines: `debug` in runs of many streams.
    pub(crate) fn stream_level(&self) -> log::Level {
        if self.many() {
            log::Level::Debug
        } else {
            log::Level::Info
        }
    }

    fn many(&self) -> bool {
        self.expected.load(Ordering::Relaxed) > MANY_STREAMS as u64
    }

    /// Registers a stream about to be read.
    pub(crate) fn start(&self, stream: &str, estimate: Option<u64>) -> Arc<StreamProgress> {
        let p = Arc::new(StreamProgress {
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            estimate,
            started: Instant::now(),
            done: AtomicBool::new(false),
        });
        if let Ok(mut m) = self.streams.lock() {
            m.entry(stream.to_string())
                .or_insert_with(|| p.clone())
                .clone()
        } else {
            p
        }
    }

    /// Adds rows to a stream's counter.
    pub(crate) fn add(&self, stream: &str, rows: u64) {
        if let Some(p) = self
            .streams
            .lock()
            .ok()
            .and_then(|m| m.get(stream).cloned())
        {
            p.rows.fetch_add(rows, Ordering::Relaxed);
        }
    }

    /// Adds message bytes to a stream's counter.
    pub(crate) fn add_bytes(&self, stream: &str, bytes: u64) {
        if let Some(p) = self
            .streams
            .lock()
            .ok()
            .and_then(|m| m.get(stream).cloned())
        {
            p.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Marks a stream finished and logs its summary and METRIC lines.
    pub(crate) fn finish(&self, stream: &str, rows: u64) {
        let Some(p) = self
            .streams
            .lock()
            .ok()
            .and_then(|m| m.get(stream).cloned())
        else {
            return;
        };
        p.done.store(true, Ordering::Relaxed);
        self.finished.fetch_add(1, Ordering::Relaxed);
        self.finished_rows.fetch_add(rows, Ordering::Relaxed);
        let secs = p.started.elapsed().as_secs_f64();
        let bytes = p.bytes.load(Ordering::Relaxed);
        let size = if bytes > 0 {
            format!(", {:.1} MB of messages", bytes as f64 / 1e6)
        } else {
            String::new()
        };
        log::log!(
            self.stream_level(),
            "stream '{stream}': done, {rows} rows in {secs:.2} s ({:.0} rows/s{size})",
            rows as f64 / secs.max(1e-9)
        );
        log::info!(
            "METRIC: {}",
            serde_json::json!({"type": "counter", "metric": "record_count", "value": rows, "tags": {"endpoint": stream}})
        );
        log::info!(
            "METRIC: {}",
            serde_json::json!({"type": "timer", "metric": "job_duration", "value": (secs * 1000.0).round() / 1000.0,
                               "tags": {"job_type": "sync", "endpoint": stream, "status": "succeeded"}})
        );
    }

    /// A line for the run (when it has many streams), and one per stream still running.
    fn report(&self) {
        if self.many() {
            self.summary();
        }
        let Ok(m) = self.streams.lock() else { return };
        for (stream, p) in m.iter().filter(|(_, p)| !p.done.load(Ordering::Relaxed)) {
            let rows = p.rows.load(Ordering::Relaxed);
            let secs = p.started.elapsed().as_secs_f64().max(1e-9);
            let rate = rows as f64 / secs;
            let share = match p.estimate.filter(|e| *e > 0) {
                Some(e) => {
                    let pct = rows as f64 * 100.0 / e as f64;
                    let eta = if rate > 0.0 && e > rows {
                        format!(", ETA {:.0} s", (e - rows) as f64 / rate)
                    } else {
                        String::new()
                    };
                    format!(" ({pct:.0}% of about {e}{eta})")
                }
                None => String::new(),
            };
            log::info!("stream '{stream}': {rows} rows{share}, {rate:.0} rows/s");
        }
    }

    /// The run's reading is over: its summary, when it has many streams.
    pub(crate) fn end(&self) {
        if self.many() {
            self.summary();
        }
    }

    /// Streams done of all, with their rows and rate.
    fn summary(&self) {
        let secs = self
            .began
            .lock()
            .ok()
            .and_then(|b| *b)
            .map_or(0.0, |b| b.elapsed().as_secs_f64());
        let rows = self.finished_rows.load(Ordering::Relaxed);
        log::info!(
            "progress: {} of {} streams done, {rows} rows ({:.0} rows/s) in {secs:.0} s",
            self.finished.load(Ordering::Relaxed),
            self.expected.load(Ordering::Relaxed),
            rows as f64 / secs.max(1e-9)
        );
    }

    /// Reports every `every` until `stop`'s sender is dropped (which ends it at once, so a
    /// run never waits on it); returns the thread handle.
    pub(crate) fn spawn_reporter(
        self: &Arc<Self>,
        every: Duration,
        stop: crossbeam_channel::Receiver<()>,
    ) -> Option<std::thread::JoinHandle<()>> {
        let me = self.clone();
        let every = every.max(Duration::from_millis(200));
        std::thread::Builder::new()
            .name("progress".into())
            .spawn(move || {
                while let Err(crossbeam_channel::RecvTimeoutError::Timeout) =
                    stop.recv_timeout(every)
                {
                    me.report();
                }
            })
            .ok()
    }
}
