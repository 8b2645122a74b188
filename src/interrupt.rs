//! SIGINT and SIGTERM stop a run cleanly: readers notice within 1024 rows (or one binlog
//! event), every complete message already produced is written, each reader records its last
//! written row behind them (`read::rows`), a final STATE covering exactly the written rows
//! follows, and the process ends by that signal (its default action, after the clean stop), so a
//! shell sees 128 + the signal number and a parent process sees "killed by SIGTERM", which is what
//! `meltano config test` requires after it stops the tap at the first RECORD.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

static FLAGS: OnceLock<Vec<(i32, Arc<AtomicBool>)>> = OnceLock::new();
static SEEN: AtomicUsize = AtomicUsize::new(0);

/// Registers the handlers (once). A failure to register is logged, not fatal.
pub fn install() {
    FLAGS.get_or_init(|| {
        [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM]
            .into_iter()
            .filter_map(|sig| {
                let flag = Arc::new(AtomicBool::new(false));
                match signal_hook::flag::register(sig, flag.clone()) {
                    Ok(_) => Some((sig, flag)),
                    Err(e) => {
                        log::warn!("cannot handle signal {sig}: {e}");
                        None
                    }
                }
            })
            .collect()
    });
}

/// The signal that asked the run to stop, if any.
pub fn requested() -> Option<i32> {
    let seen = SEEN.load(Ordering::Relaxed);
    if seen != 0 {
        return Some(seen as i32);
    }
    let flags = FLAGS.get()?;
    let sig = flags.iter().find(|(_, f)| f.load(Ordering::Relaxed))?.0;
    SEEN.store(sig as usize, Ordering::Relaxed);
    Some(sig)
}

/// A readable name for a signal number.
pub fn name(sig: i32) -> &'static str {
    match sig {
        signal_hook::consts::SIGINT => "SIGINT",
        signal_hook::consts::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Ends the process the way the signal's default action would (so the parent sees it killed by
/// `sig`), once the run has stopped cleanly; exits with 128 + `sig` if that is not possible.
pub fn exit_by(sig: i32) -> ! {
    let _ = signal_hook::low_level::emulate_default_handler(sig);
    std::process::exit(128 + sig)
}
