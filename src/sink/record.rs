//! The single writer: the only code that touches stdout.
//!
//! Workers fill large byte buffers with complete messages and send them, in order, through a
//! bounded channel (back-pressure: a slow target slows the workers, memory stays bounded).
//! Bookmark updates travel through the same channel behind the records they cover, and the
//! writer owns the state: a STATE line is written only after every record it covers.
//!
//! A reader stopping for a signal records where it stopped ([`StateLine::Final`]) behind the
//! last records it handed over, without a STATE line of its own: the run's final STATE carries
//! it. A BATCH message is written and flushed before its file's "unsent" marker is removed
//! (see `crate::sink::batch`), and both happen before any STATE covering the file's rows.

use std::io::Write;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::error::{Error, Result};
use crate::sink::batch::FinishedFile;
use crate::state::{Bookmark, KeyValues, State};

/// Size at which a worker hands its buffer to the writer.
pub(crate) const BUFFER_BYTES: usize = 256 * 1024;
/// Buffers in flight between workers and the writer.
const CHANNEL_DEPTH: usize = 16;

/// When a bookmark update reaches stdout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StateLine {
    /// At once, as a STATE line of its own.
    Now,
    /// Only in the run's final STATE: a reader stopped by a signal records its last written
    /// row without adding a STATE line per reader.
    Final,
    /// A stream's start or end: written at once when no STATE line was written for the
    /// coalescing interval (`state_interval_s`), else carried by the next STATE line (at the
    /// latest the run's final one). Many short streams then share STATE lines instead of each
    /// writing two, every one of which holds every stream's bookmark.
    Coalesce,
}

enum Out {
    Data(Vec<u8>),
    Batch(FinishedFile),
    FinalState,
    Chunk {
        stream: String,
        index: usize,
        last_pk: Option<KeyValues>,
        done: bool,
        line: StateLine,
    },
    Bookmark {
        stream: String,
        bookmark: Box<Bookmark>,
        syncing: Option<String>,
        line: StateLine,
        /// A completed full table load of the run's pass (`crate::state::pass`) starting then.
        pass: Option<u64>,
    },
    /// Every load of the run completed.
    PassDone,
}

/// When the writer writes STATE lines.
struct StateClock {
    /// Coalesced updates wait at most this long since the last STATE line.
    interval: std::time::Duration,
    /// When the last STATE line was written (None: not yet).
    last: Option<std::time::Instant>,
    /// Coalesced updates are waiting.
    coalesced: bool,
}

impl StateClock {
    /// Whether an update with `line` writes a STATE line now.
    fn on_update(&mut self, line: StateLine) -> bool {
        match line {
            StateLine::Now => true,
            StateLine::Final => false,
            StateLine::Coalesce => {
                self.coalesced = true;
                self.due()
            }
        }
    }

    /// Whether waiting coalesced updates are due.
    fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= self.interval)
    }

    fn written(&mut self) {
        self.last = Some(std::time::Instant::now());
        self.coalesced = false;
    }
}

/// A worker's handle to the writer. Cheap to clone.
#[derive(Clone)]
pub(crate) struct OutputSender {
    tx: Sender<Out>,
    recycled: Receiver<Vec<u8>>,
}

impl OutputSender {
    /// An empty buffer, reused from the writer when one is free.
    pub(crate) fn buffer(&self) -> Vec<u8> {
        self.recycled
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(BUFFER_BYTES + 64 * 1024))
    }

    /// Sends complete messages.
    pub(crate) fn send(&self, buf: Vec<u8>) -> Result<()> {
        if buf.is_empty() {
            return Ok(());
        }
        self.tx.send(Out::Data(buf)).map_err(|_| closed())
    }

    /// Sends a finished batch file's BATCH message; the writer releases the file's marker once
    /// the message is out.
    pub(crate) fn batch(&self, file: FinishedFile) -> Result<()> {
        self.tx.send(Out::Batch(file)).map_err(|_| closed())
    }

    /// Replaces a stream's bookmark and writes a STATE line (after everything sent before).
    /// `syncing` becomes `currently_syncing`.
    pub(crate) fn bookmark(
        &self,
        stream: &str,
        bookmark: Bookmark,
        syncing: Option<&str>,
    ) -> Result<()> {
        self.bookmark_with(stream, bookmark, syncing, StateLine::Now)
    }

    /// [`OutputSender::bookmark`], with the STATE line written now or only at the end.
    pub(crate) fn bookmark_with(
        &self,
        stream: &str,
        bookmark: Bookmark,
        syncing: Option<&str>,
        line: StateLine,
    ) -> Result<()> {
        self.tx
            .send(Out::Bookmark {
                stream: stream.to_string(),
                bookmark: Box::new(bookmark),
                syncing: syncing.map(str::to_string),
                line,
                pass: None,
            })
            .map_err(|_| closed())
    }

    /// A completed full table load: its bookmark, and the run's full table pass (starting at
    /// `pass`) in the state from now on, so a resumed run knows the stream is done.
    pub(crate) fn load_complete(&self, stream: &str, bookmark: Bookmark, pass: u64) -> Result<()> {
        self.tx
            .send(Out::Bookmark {
                stream: stream.to_string(),
                bookmark: Box::new(bookmark),
                syncing: None,
                line: StateLine::Coalesce,
                pass: Some(pass),
            })
            .map_err(|_| closed())
    }
}

impl OutputSender {
    /// Records progress of one chunk of a chunked FULL_TABLE stream (its last written key, or
    /// that it is done) in the stream's bookmark, and writes a STATE line.
    pub(crate) fn chunk(
        &self,
        stream: &str,
        index: usize,
        last_pk: Option<KeyValues>,
        done: bool,
    ) -> Result<()> {
        self.chunk_with(stream, index, last_pk, done, StateLine::Now)
    }

    /// [`OutputSender::chunk`], with the STATE line written now or only at the end.
    pub(crate) fn chunk_with(
        &self,
        stream: &str,
        index: usize,
        last_pk: Option<KeyValues>,
        done: bool,
        line: StateLine,
    ) -> Result<()> {
        self.tx
            .send(Out::Chunk {
                stream: stream.to_string(),
                index,
                last_pk,
                done,
                line,
            })
            .map_err(|_| closed())
    }
}

impl OutputSender {
    /// Ends the output with the current state, after everything sent before (unless the last
    /// line written already is that STATE): the last line of every run, also an interrupted one
    /// or one where no bookmark moved.
    pub(crate) fn final_state(&self) -> Result<()> {
        self.tx.send(Out::FinalState).map_err(|_| closed())
    }

    /// Every load of the run completed: its full table pass leaves the state.
    pub(crate) fn full_table_pass_done(&self) -> Result<()> {
        self.tx.send(Out::PassDone).map_err(|_| closed())
    }
}

fn closed() -> Error {
    Error::runtime("output writer stopped")
}

/// The writer thread.
pub(crate) struct Writer {
    handle: JoinHandle<Result<State>>,
}

impl Writer {
    /// Starts the writer on `sink` with the run's initial state.
    /// Coalesced bookmark updates ([`StateLine::Coalesce`]) wait up to `interval` for the next
    /// STATE line.
    pub(crate) fn spawn<W: Write + Send + 'static>(
        sink: W,
        state: State,
        interval: std::time::Duration,
    ) -> (OutputSender, Writer) {
        let (tx, rx) = bounded::<Out>(CHANNEL_DEPTH);
        let (recycle_tx, recycled) = bounded::<Vec<u8>>(CHANNEL_DEPTH);
        let clock = StateClock {
            interval,
            last: None,
            coalesced: false,
        };
        let handle = std::thread::Builder::new()
            .name("singer-writer".into())
            .spawn(move || write_loop(sink, state, clock, rx, recycle_tx))
            .unwrap_or_else(|e| {
                // Cannot start a thread: report through the join handle of a trivial one.
                let msg = format!("cannot start the writer thread: {e}");
                std::thread::spawn(move || Err(Error::runtime(msg)))
            });
        (OutputSender { tx, recycled }, Writer { handle })
    }

    /// Waits for the writer to drain (all senders must be dropped) and returns the final state.
    pub(crate) fn finish(self) -> Result<State> {
        self.handle
            .join()
            .map_err(|_| Error::runtime("the output writer thread panicked"))?
    }
}

fn write_loop<W: Write>(
    mut sink: W,
    mut state: State,
    mut clock: StateClock,
    rx: Receiver<Out>,
    recycle: Sender<Vec<u8>>,
) -> Result<State> {
    let write_err = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            Error::runtime("stdout was closed by the reader (broken pipe): stopping")
        } else {
            Error::io("cannot write Singer messages to stdout", e)
        }
    };
    // Whether the last line written is the current STATE.
    let mut state_last = false;
    for msg in rx {
        let write_state = match msg {
            Out::Data(mut buf) => {
                sink.write_all(&buf).map_err(write_err)?;
                buf.clear();
                let _ = recycle.try_send(buf);
                state_last = false;
                // Coalesced updates cover only what was written before them: due, they go out
                // behind these records.
                clock.coalesced && clock.due()
            }
            Out::Batch(file) => {
                // Out of the process before the marker goes (a kill in between leaves the
                // marker: the next run removes an announced file whose rows it reads again).
                sink.write_all(file.message()).map_err(write_err)?;
                sink.flush().map_err(write_err)?;
                file.announced()?;
                state_last = false;
                false
            }
            Out::FinalState => !state_last,
            Out::Chunk {
                stream,
                index,
                last_pk,
                done,
                line,
            } => {
                state.update_chunk(&stream, index, last_pk, done);
                state_last = false;
                clock.on_update(line)
            }
            Out::PassDone => {
                state_last &= state.full_table_pass().is_none();
                state.set_full_table_pass(None);
                false
            }
            Out::Bookmark {
                stream,
                bookmark,
                syncing,
                line,
                pass,
            } => {
                if pass.is_some() {
                    state.set_full_table_pass(pass);
                }
                state.set_bookmark(&stream, &bookmark);
                state.set_currently_syncing(syncing.as_deref());
                state_last = false;
                clock.on_update(line)
            }
        };
        if write_state {
            sink.write_all(&state.message()).map_err(write_err)?;
            clock.written();
            state_last = true;
        }
    }
    sink.flush().map_err(write_err)?;
    Ok(state)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{json, Value};

    use super::*;

    /// A sink the test can read after the writer is done with it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn lines(&self) -> Vec<Value> {
            let bytes = self.0.lock().unwrap().clone();
            String::from_utf8(bytes)
                .unwrap()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect()
        }
    }

    fn bookmark(v: Value) -> Bookmark {
        Bookmark::from_map(v.as_object().unwrap().clone()).unwrap()
    }

    fn record(id: u32) -> Vec<u8> {
        format!("{{\"type\":\"RECORD\",\"stream\":\"s\",\"record\":{{\"id\":{id}}}}}\n")
            .into_bytes()
    }

    fn run(state: State, send: impl FnOnce(&OutputSender)) -> (Vec<Value>, State) {
        run_every(state, std::time::Duration::from_secs(30), send)
    }

    /// [`run`] with STATE lines of coalesced updates at most every `interval`.
    fn run_every(
        state: State,
        interval: std::time::Duration,
        send: impl FnOnce(&OutputSender),
    ) -> (Vec<Value>, State) {
        let sink = Shared::default();
        let (out, writer) = Writer::spawn(sink.clone(), state, interval);
        send(&out);
        drop(out);
        let state = writer.finish().unwrap();
        (sink.lines(), state)
    }

    /// A completed load puts the run's full table pass in the state from its STATE line on;
    /// the end of the loads takes it out again, and the final STATE then says so even when the
    /// line before it was a STATE.
    #[test]
    fn a_completed_load_records_the_pass_until_every_load_is_done() {
        let (lines, state) = run_every(State::default(), std::time::Duration::ZERO, |out| {
            out.send(record(1)).unwrap();
            out.load_complete(
                "s",
                bookmark(json!({"version": 7, "initial_full_table_complete": true})),
                5,
            )
            .unwrap();
            out.full_table_pass_done().unwrap();
            out.final_state().unwrap();
        });
        let states: Vec<&Value> = lines.iter().filter(|l| l["type"] == "STATE").collect();
        assert_eq!(states.len(), 2, "{lines:?}");
        assert_eq!(states[0]["value"]["full_table_pass"], json!(5));
        assert_eq!(
            states[0]["value"]["bookmarks"]["s"],
            json!({"version": 7, "initial_full_table_complete": true})
        );
        assert_eq!(states[1]["value"].get("full_table_pass"), None);
        assert_eq!(state.full_table_pass(), None);
    }

    /// Streams that start and finish within the interval share STATE lines: the first one is
    /// written (nothing was yet), the rest ride on the final STATE, which holds them all and
    /// comes after every record.
    #[test]
    fn stream_starts_and_ends_within_the_interval_share_one_state_line() {
        let coalesce = |out: &OutputSender, s: &str, v: u64| {
            out.bookmark_with(
                s,
                bookmark(json!({ "version": v })),
                None,
                StateLine::Coalesce,
            )
            .unwrap()
        };
        let (lines, state) = run_every(
            State::default(),
            std::time::Duration::from_secs(3600),
            |out| {
                for (i, s) in ["a", "b", "c"].into_iter().enumerate() {
                    coalesce(out, s, 1);
                    out.send(record(i as u32)).unwrap();
                    coalesce(out, s, 2);
                }
                out.final_state().unwrap();
            },
        );
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["STATE", "RECORD", "RECORD", "RECORD", "STATE"]);
        assert_eq!(lines[0]["value"]["bookmarks"], json!({"a": {"version": 1}}));
        assert_eq!(
            lines[4]["value"]["bookmarks"],
            json!({"a": {"version": 2}, "b": {"version": 2}, "c": {"version": 2}})
        );
        assert_eq!(state.bookmark("c").unwrap().version(), Some(2));

        // With no interval every update is a STATE line of its own, after the records before it.
        let (lines, _) = run_every(State::default(), std::time::Duration::ZERO, |out| {
            coalesce(out, "a", 1);
            out.send(record(1)).unwrap();
            coalesce(out, "a", 2);
            out.final_state().unwrap();
        });
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["STATE", "RECORD", "STATE"]);
        assert_eq!(lines[2]["value"]["bookmarks"], json!({"a": {"version": 2}}));
    }

    /// A coalesced update that falls due while records flow is written behind the records that
    /// arrived after it (which it may cover), never before them.
    #[test]
    fn a_due_coalesced_state_goes_out_behind_the_records_after_it() {
        let (lines, _) = run_every(
            State::default(),
            std::time::Duration::from_millis(50),
            |out| {
                out.bookmark_with(
                    "a",
                    bookmark(json!({"version": 1})),
                    None,
                    StateLine::Coalesce,
                )
                .unwrap();
                out.bookmark_with(
                    "b",
                    bookmark(json!({"version": 1})),
                    None,
                    StateLine::Coalesce,
                )
                .unwrap();
                std::thread::sleep(std::time::Duration::from_millis(120));
                out.send(record(1)).unwrap();
                out.send(record(2)).unwrap();
                out.final_state().unwrap();
            },
        );
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["STATE", "RECORD", "STATE", "RECORD", "STATE"]);
        assert_eq!(
            lines[2]["value"]["bookmarks"],
            json!({"a": {"version": 1}, "b": {"version": 1}})
        );
    }

    #[test]
    fn a_state_line_follows_every_record_it_covers() {
        let (lines, state) = run(State::default(), |out| {
            out.send(record(1)).unwrap();
            out.send(record(2)).unwrap();
            out.bookmark("s", bookmark(json!({"version": 5})), Some("s"))
                .unwrap();
            out.send(record(3)).unwrap();
            out.final_state().unwrap();
        });
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["RECORD", "RECORD", "STATE", "RECORD", "STATE"]);
        assert_eq!(
            lines[2]["value"],
            json!({"bookmarks": {"s": {"version": 5}}, "currently_syncing": "s"})
        );
        assert_eq!(lines[4]["value"], lines[2]["value"]);
        assert_eq!(state.bookmark("s").unwrap().version(), Some(5));
    }

    #[test]
    fn the_final_state_is_not_repeated_and_final_only_bookmarks_wait_for_it() {
        let (lines, _) = run(State::default(), |out| {
            out.bookmark("a", bookmark(json!({"version": 1})), None)
                .unwrap();
            out.final_state().unwrap();
        });
        assert_eq!(lines.len(), 1, "{lines:?}");

        let (lines, _) = run(State::default(), |out| {
            out.send(record(1)).unwrap();
            out.bookmark_with("a", bookmark(json!({"version": 2})), None, StateLine::Final)
                .unwrap();
            out.send(record(2)).unwrap();
            out.final_state().unwrap();
        });
        let types: Vec<&str> = lines.iter().map(|l| l["type"].as_str().unwrap()).collect();
        assert_eq!(types, ["RECORD", "RECORD", "STATE"]);
        assert_eq!(lines[2]["value"]["bookmarks"]["a"]["version"], 2);
    }

    #[test]
    fn other_streams_bookmarks_are_carried_through() {
        let start = State::from_value(json!({"bookmarks": {"other": {"x": [1, "y"]}}})).unwrap();
        let (lines, _) = run(start, |out| {
            out.bookmark("s", bookmark(json!({"version": 9})), None)
                .unwrap();
        });
        assert_eq!(
            lines[0]["value"]["bookmarks"],
            json!({"other": {"x": [1, "y"]}, "s": {"version": 9}})
        );
    }

    #[test]
    fn chunk_progress_updates_the_streams_bookmark() {
        let start = State::from_value(json!({"bookmarks": {"s": {"version": 3, "chunks": [
            {"lo": null, "hi": {"id": 10}}, {"lo": {"id": 10}, "hi": null}]}}}))
        .unwrap();
        let (lines, _) = run(start, |out| {
            let mut key = KeyValues::new();
            key.insert("id".into(), json!(4));
            out.chunk("s", 0, Some(key), false).unwrap();
            out.chunk("s", 1, None, true).unwrap();
        });
        assert_eq!(lines.len(), 2);
        let chunks = &lines[1]["value"]["bookmarks"]["s"]["chunks"];
        assert_eq!(chunks[0]["last_pk_fetched"], json!({"id": 4}), "{chunks}");
        assert_eq!(chunks[1]["done"], true, "{chunks}");
    }

    struct Closed;

    impl Write for Closed {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_closed_stdout_stops_the_writer_with_one_clear_error() {
        let (out, writer) =
            Writer::spawn(Closed, State::default(), std::time::Duration::from_secs(30));
        out.send(record(1)).unwrap();
        // The writer stops at the first failed write; later sends fail instead of blocking.
        let mut failed = false;
        for i in 0..(CHANNEL_DEPTH as u32 * 4) {
            if out.send(record(i)).is_err() {
                failed = true;
                break;
            }
        }
        drop(out);
        let e = writer.finish().unwrap_err().to_string();
        assert!(e.contains("broken pipe"), "{e}");
        assert!(failed, "senders learn that the writer stopped");
    }
}
