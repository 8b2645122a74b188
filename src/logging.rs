//! Logs on stderr, one line each: `<UTC time> <LEVEL> <message>`.
//!
//! stdout belongs to Singer messages alone, so every log goes to stderr.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

struct StderrLogger;

static LOGGER: StderrLogger = StderrLogger;
static INSTALLED: AtomicBool = AtomicBool::new(false);
static JSON: AtomicBool = AtomicBool::new(false);

impl log::Log for StderrLogger {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        // Only our own crate logs at info; dependencies are noisy below warn.
        if record.level() > log::Level::Warn && !record.target().starts_with("tap_mysql") {
            return;
        }
        let level = match record.level() {
            log::Level::Error => "ERROR",
            log::Level::Warn => "WARNING",
            log::Level::Info => "INFO",
            log::Level::Debug => "DEBUG",
            log::Level::Trace => "TRACE",
        };
        let time = crate::singer::time::now_rfc3339_millis();
        let line = if JSON.load(Ordering::Relaxed) {
            let mut l = serde_json::json!({"time": time, "level": level, "message": record.args().to_string()})
                .to_string();
            l.push('\n');
            l
        } else {
            format!("{time} {level} {}\n", record.args())
        };
        // A closed stderr is not worth dying for.
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Switches log lines to JSON objects (`log_format: json`).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// Installs the stderr logger once; later calls only change the level.
pub fn init(level: log::LevelFilter) {
    if !INSTALLED.swap(true, Ordering::SeqCst) {
        let _ = log::set_logger(&LOGGER);
    }
    log::set_max_level(level);
}
