//! Row images read straight from a rows event's bytes.
//!
//! A table map is resolved once into a [`TableLayout`] (each column's real type, metadata,
//! signedness and how its values are sized); a row image is then one pass over the event's
//! bytes that records where each column's value lies ([`Image`]), reusing its buffer, so reading
//! a row allocates nothing. [`value::text`] turns one cell into the bytes the text protocol
//! would print, for the snapshot path's encoders.
//!
//! Corrupt or truncated input is an error, never a panic: every length is checked against the
//! event's bytes.

pub(crate) mod value;

#[cfg(test)]
mod tests;

use mysql_common::binlog::events::{OptionalMetaExtractor, TableMapEvent};
use mysql_common::constants::ColumnType;

/// How the bytes of one column's value are sized in a row image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Size {
    /// Always this many bytes.
    Fixed(usize),
    /// A little-endian length of this many bytes (1 to 4), then that many bytes.
    Prefixed(usize),
    /// A type (or metadata) this decoder cannot size: an image with a value of it is refused.
    Unknown,
}

/// One column of a table map, resolved.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MapColumn {
    /// The real type (ENUM and SET resolved out of STRING's metadata).
    pub(crate) ty: ColumnType,
    /// The column's metadata bytes in the table map (at most two are used).
    pub(crate) meta: [u8; 2],
    /// How many of `meta` the table map carries.
    pub(crate) meta_len: usize,
    /// UNSIGNED, when the table map says so (FULL/MINIMAL metadata with signedness).
    pub(crate) unsigned: bool,
    /// How its values are sized.
    pub(crate) size: Size,
}

impl MapColumn {
    /// The metadata as the table map carries it.
    pub(crate) fn meta(&self) -> &[u8] {
        &self.meta[..self.meta_len]
    }
}

/// A table map, resolved once for every row of its rows events.
#[derive(Clone, Debug)]
pub(crate) struct TableLayout {
    pub(crate) columns: Vec<MapColumn>,
    /// How many JSON columns the table has (for partial-update bitmaps).
    json_columns: usize,
}

impl TableLayout {
    /// Resolves a table map.
    pub(crate) fn new(tme: &TableMapEvent<'_>) -> Result<TableLayout, String> {
        let n = tme.columns_count() as usize;
        let extractor = OptionalMetaExtractor::new(tme.iter_optional_meta())
            .map_err(|e| format!("unreadable table map metadata: {e}"))?;
        let mut signedness = extractor.iter_signedness();
        let mut columns = Vec::with_capacity(n);
        for i in 0..n {
            let ty = match tme.get_column_type(i) {
                Ok(Some(ty)) => ty,
                Ok(None) => return Err(format!("the table map has no type for column {}", i + 1)),
                Err(e) => return Err(format!("column {}: {e}", i + 1)),
            };
            let raw_meta = tme.get_column_metadata(i).unwrap_or(&[]);
            let mut meta = [0u8; 2];
            let meta_len = raw_meta.len().min(2);
            meta[..meta_len].copy_from_slice(&raw_meta[..meta_len]);
            // Signedness lists numeric columns only, in order.
            let unsigned = ty.is_numeric_type() && signedness.next().unwrap_or(false);
            columns.push(MapColumn {
                ty,
                meta,
                meta_len,
                unsigned,
                size: size_of(ty, &meta[..meta_len]),
            });
        }
        let json_columns = columns
            .iter()
            .filter(|c| c.ty == ColumnType::MYSQL_TYPE_JSON)
            .count();
        Ok(TableLayout {
            columns,
            json_columns,
        })
    }
}

/// Bytes of the fractional seconds of TIME2, DATETIME2 and TIMESTAMP2 with `dec` digits.
fn frac_bytes(dec: u8) -> usize {
    match dec {
        1 | 2 => 1,
        3 | 4 => 2,
        5 | 6 => 3,
        _ => 0,
    }
}

/// Bytes of a binary DECIMAL(precision, scale); None for metadata no server writes.
pub(crate) fn decimal_size(precision: usize, scale: usize) -> Option<usize> {
    const GROUP: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    if precision == 0 || precision > 65 || scale > 30 || scale > precision {
        return None;
    }
    let intg = precision - scale;
    Some(intg / 9 * 4 + GROUP[intg % 9] + scale / 9 * 4 + GROUP[scale % 9])
}

/// How a value of this type and metadata is sized.
fn size_of(ty: ColumnType, meta: &[u8]) -> Size {
    use ColumnType::*;
    let m0 = meta.first().copied().unwrap_or(0);
    let m1 = meta.get(1).copied().unwrap_or(0);
    let prefixed_by_max = |max: usize| Size::Prefixed(if max < 256 { 1 } else { 2 });
    match ty {
        MYSQL_TYPE_TINY | MYSQL_TYPE_YEAR => Size::Fixed(1),
        MYSQL_TYPE_SHORT => Size::Fixed(2),
        MYSQL_TYPE_INT24 | MYSQL_TYPE_NEWDATE | MYSQL_TYPE_TIME => Size::Fixed(3),
        MYSQL_TYPE_LONG | MYSQL_TYPE_FLOAT | MYSQL_TYPE_TIMESTAMP => Size::Fixed(4),
        MYSQL_TYPE_LONGLONG | MYSQL_TYPE_DOUBLE | MYSQL_TYPE_DATETIME => Size::Fixed(8),
        MYSQL_TYPE_TIMESTAMP2 => Size::Fixed(4 + frac_bytes(m0)),
        MYSQL_TYPE_DATETIME2 => Size::Fixed(5 + frac_bytes(m0)),
        MYSQL_TYPE_TIME2 => Size::Fixed(3 + frac_bytes(m0)),
        MYSQL_TYPE_BIT if meta.len() == 2 => {
            Size::Fixed((m1 as usize * 8 + m0 as usize).div_ceil(8))
        }
        MYSQL_TYPE_NEWDECIMAL if meta.len() == 2 => {
            decimal_size(m0 as usize, m1 as usize).map_or(Size::Unknown, Size::Fixed)
        }
        MYSQL_TYPE_ENUM if meta.len() == 2 && (m1 == 1 || m1 == 2) => Size::Fixed(m1 as usize),
        MYSQL_TYPE_SET if meta.len() == 2 => Size::Fixed(m1 as usize),
        ty if is_blob(ty) && (1..=4).contains(&m0) => Size::Prefixed(m0 as usize),
        MYSQL_TYPE_JSON => Size::Prefixed(4),
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING if meta.len() == 2 => {
            prefixed_by_max(u16::from_le_bytes([m0, m1]) as usize)
        }
        MYSQL_TYPE_STRING if meta.len() == 2 => prefixed_by_max(string_max_len(m0, m1)),
        _ => Size::Unknown,
    }
}

/// The types stored as a length of 1 to 4 bytes (the metadata says how many), then the bytes.
pub(crate) fn is_blob(ty: ColumnType) -> bool {
    use ColumnType::*;
    matches!(
        ty,
        MYSQL_TYPE_TINY_BLOB
            | MYSQL_TYPE_MEDIUM_BLOB
            | MYSQL_TYPE_LONG_BLOB
            | MYSQL_TYPE_BLOB
            | MYSQL_TYPE_GEOMETRY
            | MYSQL_TYPE_VECTOR
    )
}

/// CHAR(n)'s maximum length in bytes, from its two metadata bytes (the real type shares the
/// first byte with the high bits of the length).
fn string_max_len(m0: u8, m1: u8) -> usize {
    if m0 == 0 {
        return u16::from_le_bytes([m0, m1]) as usize;
    }
    let (b0, b1) = (m0 as usize, m1 as usize);
    if b0 & 0x30 != 0x30 {
        b1 | (((b0 & 0x30) ^ 0x30) << 4)
    } else {
        b1
    }
}

/// Where one column's value lies in a row image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cell {
    /// Not in the image (a row image other than FULL).
    Absent,
    /// SQL NULL.
    Null,
    /// The value's bytes, `start..end` of the rows data (length prefix included).
    Value {
        start: usize,
        end: usize,
        /// A partial JSON update (MySQL's PARTIAL_UPDATE_ROWS_EVENT).
        partial: bool,
    },
}

/// One row image: a cell per table column. Reused from row to row.
#[derive(Debug, Default)]
pub(crate) struct Image {
    pub(crate) cells: Vec<Cell>,
}

impl Image {
    /// The bytes of column `i` (None when NULL or absent).
    #[cfg(test)]
    pub(crate) fn bytes<'d>(&self, data: &'d [u8], i: usize) -> Option<&'d [u8]> {
        match self.cells.get(i)? {
            Cell::Value { start, end, .. } => data.get(*start..*end),
            _ => None,
        }
    }
}

/// Reads the row image at `*pos` of a rows event's data into `out` and moves `*pos` past it.
/// `present[i]`: column `i` is in the image (the event's column bitmap); `shared`: the after
/// image of a partial update, which starts with its value options.
pub(crate) fn read_image(
    layout: &TableLayout,
    data: &[u8],
    pos: &mut usize,
    present: &[bool],
    shared: bool,
    out: &mut Image,
) -> Result<(), String> {
    let mut partial_json: Option<(usize, usize)> = None; // (bitmap start, json columns seen)
    if shared {
        let options = read_lenenc(data, pos)?;
        if options & 1 != 0 {
            let start = *pos;
            *pos = take(
                data,
                *pos,
                layout.json_columns.div_ceil(8),
                "partial JSON bitmap",
            )?;
            partial_json = Some((start, 0));
        }
    }
    let in_image = present.iter().filter(|p| **p).count();
    let nulls = *pos;
    *pos = take(data, *pos, in_image.div_ceil(8), "null bitmap")?;
    out.cells.clear();
    let mut k = 0usize; // index among the columns in the image
    for (i, col) in layout.columns.iter().enumerate() {
        let partial = match (&mut partial_json, col.ty) {
            (Some((start, seen)), ColumnType::MYSQL_TYPE_JSON) => {
                *seen += 1;
                bit(data, *start, *seen - 1)
            }
            _ => false,
        };
        if !present.get(i).copied().unwrap_or(false) {
            out.cells.push(Cell::Absent);
            continue;
        }
        k += 1;
        if bit(data, nulls, k - 1) {
            out.cells.push(Cell::Null);
            continue;
        }
        let start = *pos;
        let end = value_end(col, data, start).map_err(|why| format!("column {}: {why}", i + 1))?;
        *pos = end;
        out.cells.push(Cell::Value {
            start,
            end,
            partial,
        });
    }
    Ok(())
}

/// Bit `i` of the bitmap at `start` (least significant bit first).
fn bit(data: &[u8], start: usize, i: usize) -> bool {
    data.get(start + i / 8)
        .is_some_and(|b| b & (1 << (i % 8)) != 0)
}

/// The position after `n` bytes at `pos`, or an error naming `what` when the data ends first.
fn take(data: &[u8], pos: usize, n: usize, what: &str) -> Result<usize, String> {
    pos.checked_add(n)
        .filter(|&end| end <= data.len())
        .ok_or_else(|| format!("the rows event ends inside a row's {what}"))
}

/// A length-encoded integer at `*pos`.
fn read_lenenc(data: &[u8], pos: &mut usize) -> Result<u64, String> {
    let first = *data
        .get(*pos)
        .ok_or("the rows event ends inside a row's value options")?;
    let n = match first {
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => {
            *pos += 1;
            return Ok(first as u64);
        }
    };
    let end = take(data, *pos + 1, n, "value options")?;
    let v = le_uint(&data[*pos + 1..end]);
    *pos = end;
    Ok(v)
}

/// A little-endian unsigned integer of up to 8 bytes.
pub(crate) fn le_uint(b: &[u8]) -> u64 {
    b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

/// Where the value of `col` starting at `start` ends.
fn value_end(col: &MapColumn, data: &[u8], start: usize) -> Result<usize, String> {
    match col.size {
        Size::Fixed(n) => take(data, start, n, "value"),
        Size::Prefixed(k) => {
            let len_end = take(data, start, k, "value length")?;
            let len = le_uint(&data[start..len_end]);
            let len = usize::try_from(len).map_err(|_| "a value longer than memory")?;
            take(data, len_end, len, "value")
        }
        Size::Unknown => Err(format!(
            "binlog column type {:?} (metadata {:?}) is not supported",
            col.ty,
            col.meta()
        )),
    }
}

/// The text of every value of one row image: one entry per table column, None for NULL.
pub type ImageTexts = Vec<Option<Vec<u8>>>;

/// The (before, after) image texts of one row of a rows event.
pub type RowTexts = (Option<ImageTexts>, Option<ImageTexts>);

/// Every row of a rows event through this decoder, as (before, after) texts per table column;
/// `decodings` has one entry per table column. The differential tests compare this with the
/// driver's decoder.
pub fn event_texts(
    tme: &TableMapEvent<'_>,
    rows: &mysql_common::binlog::events::RowsEventData<'_>,
    decodings: &[crate::cdc::values::ColumnDecoding],
) -> Result<Vec<RowTexts>, String> {
    use mysql_common::binlog::events::RowsEventData;
    let layout = TableLayout::new(tme)?;
    let before: Option<Vec<bool>> = rows
        .columns_before_image()
        .map(|b| b.iter().by_vals().collect());
    let after: Option<Vec<bool>> = rows
        .columns_after_image()
        .map(|b| b.iter().by_vals().collect());
    let shared = matches!(rows, RowsEventData::PartialUpdateRowsEvent(_));
    let data = rows.rows_data();
    let (mut at, mut img, mut scratch, mut out) = (0, Image::default(), Vec::new(), Vec::new());
    let texts = |img: &Image, scratch: &mut Vec<u8>| -> Result<ImageTexts, String> {
        let mut t = Vec::new();
        for (i, cell) in img.cells.iter().enumerate() {
            t.push(match *cell {
                Cell::Value {
                    start,
                    end,
                    partial,
                } => {
                    let dec = decodings.get(i).ok_or("fewer decodings than columns")?;
                    Some(
                        value::text(&layout.columns[i], dec, &data[start..end], partial, scratch)?
                            .to_vec(),
                    )
                }
                _ => None,
            });
        }
        Ok(t)
    };
    while at < data.len() {
        let mut row = (None, None);
        if let Some(p) = &before {
            read_image(&layout, data, &mut at, p, false, &mut img)?;
            row.0 = Some(texts(&img, &mut scratch)?);
        }
        if let Some(p) = &after {
            read_image(&layout, data, &mut at, p, shared, &mut img)?;
            row.1 = Some(texts(&img, &mut scratch)?);
        }
        if before.is_none() && after.is_none() {
            return Err("a rows event without images".into());
        }
        out.push(row);
    }
    Ok(out)
}
