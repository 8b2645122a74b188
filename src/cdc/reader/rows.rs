//! Rows events into RECORDs: table maps resolved once, row images read from the event's bytes,
//! values written through the snapshot path's encoders.

use std::collections::HashMap;

use mysql::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};

use super::session::Session;
use crate::cdc::rows::{read_image, value, Cell, Image, TableLayout};
use crate::cdc::stream::{column_mapping, commit_time, CdcStream, Position};
use crate::encode::encode_cell;
use crate::error::{Error, Result};
use crate::sink::record::BUFFER_BYTES;

/// The table maps of the binlog read so far, by table id.
#[derive(Default)]
pub(super) struct TableMaps {
    by_id: HashMap<u64, TableEntry>,
    /// Bumped when a stream's columns may have changed: mappings are then worked out again.
    generation: u64,
}

/// One table map and what it resolves to.
struct TableEntry {
    /// The event's bytes: the next table map of the same id is usually identical.
    raw: Vec<u8>,
    tme: TableMapEvent<'static>,
    layout: TableLayout,
    /// The stream of the table and the mapping of its columns (None: not worked out yet for
    /// the current generation).
    target: Option<Target>,
    generation: u64,
}

#[derive(Clone)]
enum Target {
    /// No selected stream reads this table.
    None,
    /// Stream `idx`; per selected column, its index in the table map (or why there is none).
    Stream {
        idx: usize,
        mapping: std::result::Result<Vec<Option<usize>>, String>,
    },
}

impl TableMaps {
    /// A TABLE_MAP event: resolved again only when it differs from the last one of its id.
    pub(super) fn on_table_map(&mut self, event: &Event) -> std::result::Result<(), String> {
        let data = event.data();
        // The table id: the first 6 bytes of the post-header (a wrong guess only costs a parse).
        let guess = data.get(..6).map_or(0, crate::cdc::rows::le_uint);
        if self.by_id.get(&guess).is_some_and(|e| e.raw == data) {
            return Ok(());
        }
        let Ok(Some(EventData::TableMapEvent(tme))) = event.read_data() else {
            return Err("unreadable table map event".into());
        };
        let layout = TableLayout::new(&tme)?;
        self.by_id.insert(
            tme.table_id(),
            TableEntry {
                raw: data.to_vec(),
                tme: tme.into_owned(),
                layout,
                target: None,
                generation: self.generation,
            },
        );
        Ok(())
    }

    /// Streams' columns may have changed (DDL, a reconnect).
    pub(super) fn schema_changed(&mut self) {
        self.generation += 1;
    }
}

/// Buffers reused from row to row.
#[derive(Default)]
pub(super) struct RowBuffers {
    before: Image,
    after: Image,
    present_before: Vec<bool>,
    present_after: Vec<bool>,
    scratch: Vec<u8>,
    scratch2: Vec<u8>,
}

/// Which image(s) a rows event carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum RowsKind {
    Insert,
    Update,
    Delete,
}

impl Session<'_, '_> {
    /// The stream a table map's rows go to, worked out once per table map and generation.
    fn target(&mut self, table_id: u64) -> Option<Target> {
        let generation = self.tables.generation;
        let entry = self.tables.by_id.get_mut(&table_id)?;
        if entry.generation != generation || entry.target.is_none() {
            let key = self
                .facts
                .table_key(&entry.tme.database_name(), &entry.tme.table_name());
            entry.target = Some(match self.by_table.get(&key) {
                None => Target::None,
                Some(&idx) => Target::Stream {
                    idx,
                    mapping: column_mapping(&self.streams[idx], &entry.tme),
                },
            });
            entry.generation = generation;
        }
        entry.target.clone()
    }

    /// A rows event: RECORDs for the stream of its table.
    pub(super) fn on_rows(
        &mut self,
        rows: &RowsEventData<'_>,
        pos: &Position,
        timestamp: u32,
    ) -> Result<()> {
        let failed = |e: String| Error::runtime(format!("binlog {}:{}: {e}", pos.file, pos.pos));
        let Some(target) = self.target(rows.table_id()) else {
            return Err(failed("rows event without its table map".into()));
        };
        let Target::Stream { idx, mapping } = target else {
            return Ok(());
        };
        if self.covered(idx, pos) || self.streams[idx].resnapshot.is_some() {
            return Ok(()); // already sent, or re-read as a whole
        }
        let mapping = match mapping {
            Ok(m) => m,
            Err(why) => return self.resnapshot(idx, why, true, pos),
        };
        let kind = match rows {
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => {
                RowsKind::Delete
            }
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => {
                RowsKind::Insert
            }
            _ => RowsKind::Update,
        };
        // The time of deletes (and of the old key of an update that changed it).
        let when = match kind {
            RowsKind::Insert => String::new(),
            _ => commit_time(timestamp),
        };
        let rb = &mut self.rowbuf;
        let has_before = fill_present(
            rows.columns_before_image().map(|b| b.iter().by_vals()),
            &mut rb.present_before,
        );
        let has_after = fill_present(
            rows.columns_after_image().map(|b| b.iter().by_vals()),
            &mut rb.present_after,
        );
        let shared = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
        let data = rows.rows_data();
        let layout = match self.tables.by_id.get(&rows.table_id()) {
            Some(e) => &e.layout,
            None => return Err(failed("rows event without its table map".into())),
        };
        let mut at = 0usize;
        while at < data.len() {
            let rb = &mut self.rowbuf;
            if has_before {
                read_image(
                    layout,
                    data,
                    &mut at,
                    &rb.present_before,
                    false,
                    &mut rb.before,
                )
                .map_err(&failed)?;
            }
            if has_after {
                read_image(
                    layout,
                    data,
                    &mut at,
                    &rb.present_after,
                    shared,
                    &mut rb.after,
                )
                .map_err(&failed)?;
            }
            let s = &mut self.streams[idx];
            let row = RowRef {
                layout,
                mapping: &mapping,
                data,
                pos,
            };
            // A delete's before image; an insert's after image; an update's after image, after
            // its before image as a delete when the update changed the key (the row under the
            // old key is gone).
            let (old, new) = match kind {
                RowsKind::Delete => (Some(&rb.before), None),
                RowsKind::Insert => (None, Some(&rb.after)),
                RowsKind::Update => {
                    let changed = key_changed(
                        s,
                        &row,
                        &rb.before,
                        &rb.after,
                        &mut rb.scratch,
                        &mut rb.scratch2,
                    )?;
                    (changed.then_some(&rb.before), Some(&rb.after))
                }
            };
            for (image, deleted_at) in [(old, Some(when.as_str())), (new, None)] {
                if let Some(image) = image {
                    write(s, &row, image, deleted_at, &mut self.buf, &mut rb.scratch)?;
                    self.rows_total += 1;
                }
            }
            if self.buf.len() >= BUFFER_BYTES {
                self.out
                    .send(std::mem::replace(&mut self.buf, self.out.buffer()))?;
            }
        }
        self.touched[idx] = true;
        Ok(())
    }
}

/// The event's column bitmap as one flag per column; false when the event has no such image.
fn fill_present(bits: Option<impl Iterator<Item = bool>>, out: &mut Vec<bool>) -> bool {
    out.clear();
    let Some(bits) = bits else { return false };
    out.extend(bits);
    true
}

/// What every row of one rows event shares.
struct RowRef<'a> {
    layout: &'a TableLayout,
    /// Per selected column, its index in the table map.
    mapping: &'a [Option<usize>],
    data: &'a [u8],
    pos: &'a Position,
}

/// The text of selected column `ci` in `image` (None for NULL).
fn cell_text<'b>(
    s: &CdcStream,
    row: &RowRef<'b>,
    image: &Image,
    ci: usize,
    scratch: &'b mut Vec<u8>,
) -> Result<Option<&'b [u8]>> {
    let Some(ti) = row.mapping[ci] else {
        return Ok(None);
    };
    match image.cells.get(ti) {
        None | Some(Cell::Null) => Ok(None),
        Some(Cell::Absent) => Err(value_error(
            s,
            ci,
            row.pos,
            "the column is not in the row image (a session wrote with binlog_row_image other than FULL)".into(),
        )),
        Some(Cell::Value {
            start,
            end,
            partial,
        }) => {
            let col = &row.layout.columns[ti];
            let bytes = &row.data[*start..*end];
            value::text(col, &s.decodings[ci], bytes, *partial, scratch)
                .map(Some)
                .map_err(|e| value_error(s, ci, row.pos, e))
        }
    }
}

/// Whether an update changed the stream's key (the bytes the tap would emit differ).
fn key_changed(
    s: &CdcStream,
    row: &RowRef<'_>,
    before: &Image,
    after: &Image,
    scratch: &mut Vec<u8>,
    scratch2: &mut Vec<u8>,
) -> Result<bool> {
    for &ci in &s.key_columns {
        let Some(ti) = row.mapping[ci] else { continue };
        // The same bytes in the binlog are the same value.
        if before.cells.get(ti).map(|c| cell_bytes(c, row.data))
            == after.cells.get(ti).map(|c| cell_bytes(c, row.data))
        {
            continue;
        }
        let old = cell_text(s, row, before, ci, scratch)?;
        let new = cell_text(s, row, after, ci, scratch2)?;
        if old != new {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A cell's bytes and kind, for comparing two images.
fn cell_bytes<'d>(c: &Cell, data: &'d [u8]) -> (Option<&'d [u8]>, bool, bool) {
    match *c {
        Cell::Value {
            start,
            end,
            partial,
        } => (data.get(start..end), partial, false),
        Cell::Null => (None, false, false),
        Cell::Absent => (None, false, true),
    }
}

/// Appends one RECORD of `image` (a delete when `deleted_at` is set).
fn write(
    s: &mut CdcStream,
    row: &RowRef<'_>,
    image: &Image,
    deleted_at: Option<&str>,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Result<()> {
    buf.extend_from_slice(s.frame.prefix());
    for ci in 0..s.decodings.len() {
        buf.extend_from_slice(s.frame.key(ci));
        let text = cell_text(s, row, image, ci, scratch)?;
        let enc = s.plan.columns[ci].encoder;
        encode_cell(enc, text, buf, &mut s.warnings[ci]);
    }
    buf.extend_from_slice(s.frame.key(s.decodings.len()));
    match deleted_at {
        Some(t) => crate::encode::json::write_str(buf, t),
        None => buf.extend_from_slice(b"null"),
    }
    buf.extend_from_slice(s.frame.suffix());
    s.plan.check_text(&s.warnings)?;
    Ok(())
}

fn value_error(s: &CdcStream, ci: usize, pos: &Position, e: String) -> Error {
    Error::runtime(format!(
        "stream '{}' column '{}' at binlog {}:{}: {e}",
        s.plan.stream_id, s.plan.columns[ci].name, pos.file, pos.pos
    ))
}
