//! One cell of a row image into its text-protocol bytes.
//!
//! The common types are decoded here from their binlog encoding into a [`Raw`] value with no
//! allocation: integers, FLOAT/DOUBLE, DECIMAL, the temporal types, YEAR, ENUM/SET, BIT and the
//! string and blob types. The rest (MySQL's binary JSON, the pre-5.6 temporal encodings) go
//! through the driver's decoder, as before. Every value then ends in [`write_text`], the one
//! definition of a value's text that the driver path shares.

use mysql_common::binlog::value::BinlogValue;
use mysql_common::constants::ColumnType;
use mysql_common::io::ParseBuf;

use super::{is_blob, le_uint, MapColumn, Size};
use crate::cdc::text::{bytes_are_text, write_text, Raw};
use crate::cdc::values::{text_bytes, ColumnDecoding};

/// A decoded cell, before its text.
enum Decoded<'a> {
    /// A value (whose bytes, if any, are the event's).
    Value(Raw<'a>),
    /// The value's text is already in the scratch buffer (DECIMAL, YEAR).
    InScratch,
    /// A type the driver decodes.
    Driver,
}

/// The text-protocol bytes of one non-NULL cell: `bytes` is the value as the row image holds
/// it (length prefix included). The result is either a slice of `bytes` or `scratch`.
pub(crate) fn text<'a>(
    col: &MapColumn,
    dec: &ColumnDecoding,
    bytes: &'a [u8],
    partial: bool,
    scratch: &'a mut Vec<u8>,
) -> Result<&'a [u8], String> {
    scratch.clear();
    match decode(col, bytes, scratch)? {
        Decoded::Value(Raw::Bytes(b)) if bytes_are_text(dec, b) => Ok(b),
        Decoded::Value(raw) => {
            write_text(dec, raw, scratch)?;
            Ok(scratch)
        }
        Decoded::InScratch => {
            if !bytes_are_text(dec, scratch) {
                let t = std::mem::take(scratch);
                write_text(dec, Raw::Bytes(&t), scratch)?;
            }
            Ok(scratch)
        }
        Decoded::Driver => {
            let mut buf = ParseBuf(bytes);
            let v: BinlogValue<'_> = buf
                .parse((col.ty, col.meta(), col.unsigned, partial))
                .map_err(|e| format!("cannot decode the binlog value: {e}"))?;
            if let Some(t) = text_bytes(dec, &v)? {
                scratch.extend_from_slice(&t);
            }
            Ok(scratch)
        }
    }
}

/// Decodes one value of `col` from its bytes (whose length the image reader checked).
fn decode<'a>(col: &MapColumn, b: &'a [u8], scratch: &mut Vec<u8>) -> Result<Decoded<'a>, String> {
    use ColumnType::*;
    let m0 = col.meta[0];
    let signed = !col.unsigned;
    let raw = match col.ty {
        MYSQL_TYPE_TINY if signed => Raw::Int(b[0] as i8 as i64),
        MYSQL_TYPE_TINY => Raw::Int(b[0] as i64),
        MYSQL_TYPE_SHORT if signed => Raw::Int(i16::from_le_bytes([b[0], b[1]]) as i64),
        MYSQL_TYPE_SHORT => Raw::Int(u16::from_le_bytes([b[0], b[1]]) as i64),
        // 24 bits, as the driver reads them (unsigned; `write_text` sign-extends for a signed
        // column).
        MYSQL_TYPE_INT24 => Raw::Int(le_uint(&b[..3]) as i64),
        MYSQL_TYPE_LONG if signed => Raw::Int(i32::from_le_bytes(arr(b)) as i64),
        MYSQL_TYPE_LONG => Raw::Int(u32::from_le_bytes(arr(b)) as i64),
        MYSQL_TYPE_LONGLONG if signed => Raw::Int(i64::from_le_bytes(arr(b))),
        MYSQL_TYPE_LONGLONG => {
            let u = u64::from_le_bytes(arr(b));
            i64::try_from(u).map_or(Raw::UInt(u), Raw::Int)
        }
        MYSQL_TYPE_FLOAT => Raw::Float(f32::from_le_bytes(arr(b))),
        MYSQL_TYPE_DOUBLE => Raw::Double(f64::from_le_bytes(arr(b))),
        MYSQL_TYPE_YEAR => {
            // The driver's text: 1900 + the stored byte ("1900" for the zero year).
            let year = 1900 + b[0] as u32;
            scratch.extend_from_slice(itoa::Buffer::new().format(year).as_bytes());
            return Ok(Decoded::InScratch);
        }
        MYSQL_TYPE_NEWDATE => {
            let v = le_uint(&b[..3]) as u32;
            Raw::Date(
                (v >> 9) as u16,
                ((v >> 5) & 15) as u8,
                (v & 31) as u8,
                0,
                0,
                0,
                0,
            )
        }
        MYSQL_TYPE_TIMESTAMP2 => {
            let secs = u32::from_be_bytes(arr(b)) as i32 as i64;
            Raw::Epoch(secs, fraction(&b[4..], m0))
        }
        MYSQL_TYPE_DATETIME2 => datetime2(b, m0),
        MYSQL_TYPE_TIME2 => time2(b, m0),
        MYSQL_TYPE_NEWDECIMAL => {
            decimal_text(b, col.meta[0] as usize, col.meta[1] as usize, scratch)?;
            return Ok(Decoded::InScratch);
        }
        MYSQL_TYPE_ENUM if col.meta[1] == 1 => Raw::Int(b[0] as i64),
        MYSQL_TYPE_ENUM => Raw::Int(u16::from_le_bytes([b[0], b[1]]) as i64),
        MYSQL_TYPE_SET | MYSQL_TYPE_BIT => Raw::Bytes(b),
        ty if is_blob(ty)
            || matches!(
                ty,
                MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING | MYSQL_TYPE_STRING
            ) =>
        {
            match col.size {
                Size::Prefixed(k) => Raw::Bytes(&b[k..]),
                _ => return Ok(Decoded::Driver),
            }
        }
        _ => return Ok(Decoded::Driver),
    };
    Ok(Decoded::Value(raw))
}

/// The first N bytes of `b` (the image reader checked the value's size).
fn arr<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// A big-endian signed integer of 1 to 4 bytes.
fn be_int(b: &[u8]) -> i32 {
    let v = b.iter().fold(0u32, |acc, &x| (acc << 8) | x as u32);
    let shift = 32 - 8 * b.len() as u32;
    ((v << shift) as i32) >> shift
}

/// Microseconds from the fractional bytes of TIMESTAMP2 and DATETIME2 with `dec` digits.
fn fraction(b: &[u8], dec: u8) -> i32 {
    match dec {
        1 | 2 => be_int(&b[..1]) * 10_000,
        3 | 4 => be_int(&b[..2]) * 100,
        5 | 6 => be_int(&b[..3]),
        _ => 0,
    }
}

/// DATETIME2: 5 bytes of packed year*13+month, day, hour, minute, second (offset by 2^39), then
/// the fraction.
fn datetime2(b: &[u8], dec: u8) -> Raw<'static> {
    let int_part = (b[..5].iter().fold(0u64, |acc, &x| (acc << 8) | x as u64) as i64) - (1 << 39);
    let packed = (int_part << 24) + fraction(&b[5..], dec) as i64;
    let packed = packed.abs();
    let micros = packed % (1 << 24);
    let ymdhms = packed >> 24;
    let ymd = ymdhms >> 17;
    let (ym, hms) = (ymd >> 5, ymdhms % (1 << 17));
    Raw::Date(
        (ym / 13) as u16,
        (ym % 13) as u8,
        (ymd % (1 << 5)) as u8,
        (hms >> 12) as u8,
        ((hms >> 6) % (1 << 6)) as u8,
        (hms % (1 << 6)) as u8,
        micros as u32,
    )
}

/// TIME2: 3 bytes of sign, hours, minutes, seconds (offset by 2^23), then the fraction (its
/// sign follows the integer part's).
fn time2(b: &[u8], dec: u8) -> Raw<'static> {
    let int_part = be_uint(&b[..3]) as i64 - (1 << 23);
    let packed = match dec {
        1 | 2 => {
            let (mut i, mut f) = (int_part, b[3] as i64);
            if i < 0 && f > 0 {
                i += 1;
                f -= 0x100;
            }
            (i << 24) + f * 10_000
        }
        3 | 4 => {
            let (mut i, mut f) = (int_part, be_uint(&b[3..5]) as i64);
            if i < 0 && f > 0 {
                i += 1;
                f -= 0x10000;
            }
            (i << 24) + f * 100
        }
        // 6 bytes: the whole value, offset by 2^47.
        5 | 6 => be_uint(&b[..6]) as i64 - (1 << 47),
        _ => int_part << 24,
    };
    let neg = packed < 0;
    let packed = packed.abs();
    let hms = packed >> 24;
    let hours = ((hms >> 12) as u32) % (1 << 10);
    Raw::Time(
        neg,
        hours / 24,
        (hours % 24) as u8,
        (((hms >> 6) as u32) % (1 << 6)) as u8,
        ((hms as u32) % (1 << 6)) as u8,
        (packed % (1 << 24)) as u32,
    )
}

/// A big-endian unsigned integer of up to 8 bytes.
fn be_uint(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)
}

/// Binary DECIMAL(precision, scale) as text, the way the driver prints it: a `-` for negative
/// values, the integer digits without leading zeros (`0` when there are none), then `.` and
/// exactly `scale` digits.
///
/// The format: groups of 9 digits in 4 big-endian bytes, a shorter leading (integer) and
/// trailing (fraction) group in as few bytes as their digits need; the first bit is flipped,
/// and every byte of a negative value is inverted.
fn decimal_text(b: &[u8], precision: usize, scale: usize, out: &mut Vec<u8>) -> Result<(), String> {
    const GROUP: [usize; 10] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];
    let size = super::decimal_size(precision, scale)
        .filter(|&n| n <= b.len() && n <= 32)
        .ok_or("bad DECIMAL metadata or value")?;
    let mut v = [0u8; 32];
    v[..size].copy_from_slice(&b[..size]);
    v[0] ^= 0x80;
    let negative = v[0] & 0x80 != 0;
    if negative {
        v[..size].iter_mut().for_each(|x| *x = !*x);
    }
    let intg = precision - scale;
    let (lead, full_int) = (intg % 9, intg / 9);
    let (full_frac, tail) = (scale / 9, scale % 9);
    // Each group's value, in order: leading, full integer groups, full fraction groups, tail.
    let mut at = 0usize;
    let mut group = |digits: usize| -> i64 {
        let n = GROUP[digits];
        let x = be_int(&v[at..at + n]) as i64;
        at += n;
        x
    };
    let mut int_groups = [0i64; 8];
    let mut ints = 0usize;
    let mut pushed = |x: i64, ints: &mut usize| {
        // Leading zero groups are dropped.
        if x != 0 || *ints > 0 {
            int_groups[*ints] = x;
            *ints += 1;
        }
    };
    if lead > 0 {
        pushed(group(lead), &mut ints);
    }
    for _ in 0..full_int {
        pushed(group(9), &mut ints);
    }
    if ints == 0 && scale == 0 {
        out.push(b'0');
        return Ok(());
    }
    if negative {
        out.push(b'-');
    }
    if ints == 0 {
        out.push(b'0');
    }
    for (i, x) in int_groups[..ints].iter().enumerate() {
        push_group(out, *x, if i == 0 { 0 } else { 9 });
    }
    if scale > 0 {
        out.push(b'.');
        for _ in 0..full_frac {
            push_group(out, group(9), 9);
        }
        if tail > 0 {
            push_group(out, group(tail), tail);
        }
    }
    Ok(())
}

/// A digit group zero-padded to `width`.
fn push_group(out: &mut Vec<u8>, x: i64, width: usize) {
    let mut b = itoa::Buffer::new();
    let digits = b.format(x).as_bytes();
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(digits);
}
