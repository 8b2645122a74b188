//! A binlog value (as the row decoder or the driver read it) into the bytes the text protocol
//! would print for it, appended to a reusable buffer: no allocation on the common types.
//!
//! Both row decoders end here: the fast one (`rows`) and the driver's (`values::text_bytes`, kept
//! as the oracle the differential tests compare against), so a value's text has one definition.

use crate::catalog::types::{ColumnKind, IntWidth};
use crate::cdc::values::ColumnDecoding;
use crate::singer::time::civil_from_days;

/// One decoded binlog value, borrowing its bytes from the event (or from the caller).
///
/// The variants are the driver's (`mysql::Value`) so that both decoders meet here with the same
/// value; `Epoch` is a TIMESTAMP, which the driver hands over as `secs[.micros]` text.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Raw<'a> {
    /// SQL NULL.
    Null,
    /// A signed integer (also an unsigned one the table map did not mark unsigned).
    Int(i64),
    /// An unsigned integer above `i64::MAX`.
    UInt(u64),
    /// FLOAT.
    Float(f32),
    /// DOUBLE.
    Double(f64),
    /// DATE or DATETIME: year, month, day, hour, minute, second, microseconds.
    Date(u16, u8, u8, u8, u8, u8, u32),
    /// TIME: negative, days, hours, minutes, seconds, microseconds.
    Time(bool, u32, u8, u8, u8, u32),
    /// TIMESTAMP: seconds since the epoch and microseconds.
    Epoch(i64, i32),
    /// Any other value as bytes (strings in the column's character set, DECIMAL text, ...).
    Bytes(&'a [u8]),
}

/// Appends the text-protocol bytes of `v` to `out`; false (nothing appended) for NULL.
pub(crate) fn write_text(
    col: &ColumnDecoding,
    v: Raw<'_>,
    out: &mut Vec<u8>,
) -> Result<bool, String> {
    match (v, &col.kind) {
        (Raw::Null, _) => return Ok(false),
        (Raw::Int(i), ColumnKind::Integer { width, unsigned }) => {
            let mut b = itoa::Buffer::new();
            out.extend_from_slice(
                match unsigned {
                    true => b.format(reinterpret_unsigned(i, *width)),
                    false => b.format(sign_extend(i, *width)),
                }
                .as_bytes(),
            );
        }
        (Raw::Int(i), ColumnKind::Enum { values }) => enum_label(i, values, out)?,
        (Raw::Int(i), _) => out.extend_from_slice(itoa::Buffer::new().format(i).as_bytes()),
        (Raw::UInt(u), _) => out.extend_from_slice(itoa::Buffer::new().format(u).as_bytes()),
        // FLOAT: the exact 32-bit value as a double, as the snapshot reads it (`col + 0E0`).
        (Raw::Float(f), _) => out.extend_from_slice(ryu::Buffer::new().format(f as f64).as_bytes()),
        (Raw::Double(f), _) => out.extend_from_slice(ryu::Buffer::new().format(f).as_bytes()),
        (Raw::Date(y, m, d, ..), ColumnKind::Date) => push_date(out, y, m, d),
        (Raw::Date(y, m, d, h, mi, s, us), kind) => {
            push_date(out, y, m, d);
            out.push(b' ');
            push_clock(out, h as u64, mi, s);
            push_fraction(out, us, fsp(kind));
        }
        (Raw::Time(neg, days, h, mi, s, us), kind) => {
            if neg {
                out.push(b'-');
            }
            push_clock(out, days as u64 * 24 + h as u64, mi, s);
            push_fraction(out, us, fsp(kind));
        }
        (Raw::Epoch(secs, micros), ColumnKind::Timestamp { fsp }) => {
            push_epoch(out, secs, micros.max(0) as u32, *fsp)
        }
        // Not a TIMESTAMP column: the driver's `secs[.micros]` text, as it is.
        (Raw::Epoch(secs, micros), _) => {
            out.extend_from_slice(itoa::Buffer::new().format(secs).as_bytes());
            if micros != 0 {
                out.push(b'.');
                push_padded(out, micros as i64, 6);
            }
        }
        (Raw::Bytes(b), kind) => bytes_text(col, kind, b, out)?,
    }
    Ok(true)
}

/// The text of a value the binlog carries as bytes.
fn bytes_text(
    col: &ColumnDecoding,
    kind: &ColumnKind,
    b: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), String> {
    match kind {
        ColumnKind::Timestamp { fsp } => {
            let (secs, micros) = parse_epoch(b)?;
            push_epoch(out, secs, micros, *fsp);
        }
        ColumnKind::Year if b == b"1900" => out.push(b'0'),
        ColumnKind::Set { values } => {
            let mask = b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64);
            let mut first = true;
            for (i, label) in values.iter().enumerate().take(64) {
                if mask & (1u64 << i) != 0 {
                    if !first {
                        out.push(b',');
                    }
                    first = false;
                    out.extend_from_slice(label.as_bytes());
                }
            }
        }
        ColumnKind::Binary => {
            out.extend_from_slice(b);
            if let Some(n) = col.fixed_binary_len {
                if b.len() < n {
                    out.resize(out.len() + n - b.len(), 0);
                }
            }
        }
        ColumnKind::Spatial => out.extend_from_slice(super::geojson::from_internal(b)?.as_bytes()),
        // MariaDB logs UUIDs in their canonical byte order (not the swapped order it stores
        // version 1-5 UUIDs in), as fixed-size binary whose trailing zero bytes are dropped.
        ColumnKind::Uuid => push_uuid(out, &fixed::<16>(b, "UUID")?),
        ColumnKind::Inet4 => {
            let a = std::net::Ipv4Addr::from(fixed::<4>(b, "INET4")?);
            push_display(out, &a);
        }
        ColumnKind::Inet6 => {
            out.extend_from_slice(inet6_text(&fixed::<16>(b, "INET6")?).as_bytes())
        }
        ColumnKind::Text { .. } | ColumnKind::Json | ColumnKind::Enum { .. } => {
            decode_text(b, col.charset.as_deref(), out)
        }
        _ => out.extend_from_slice(b),
    }
    Ok(())
}

/// Whether the text of `kind`'s bytes is the bytes themselves (no conversion, no padding):
/// the row decoder then hands them to the encoder without a copy.
pub(crate) fn bytes_are_text(col: &ColumnDecoding, b: &[u8]) -> bool {
    match &col.kind {
        ColumnKind::Text { .. } | ColumnKind::Json | ColumnKind::Enum { .. } => {
            is_utf8_charset(col.charset.as_deref())
        }
        ColumnKind::Binary => col.fixed_binary_len.is_none_or(|n| b.len() >= n),
        ColumnKind::Year => b != b"1900",
        ColumnKind::Timestamp { .. }
        | ColumnKind::Set { .. }
        | ColumnKind::Spatial
        | ColumnKind::Uuid
        | ColumnKind::Inet4
        | ColumnKind::Inet6 => false,
        _ => true,
    }
}

fn enum_label(i: i64, values: &[String], out: &mut Vec<u8>) -> Result<(), String> {
    let idx = i as usize;
    if idx == 0 {
        return Ok(());
    }
    let label = values.get(idx - 1).ok_or_else(|| {
        format!(
            "ENUM index {idx} is beyond the column's {} labels",
            values.len()
        )
    })?;
    out.extend_from_slice(label.as_bytes());
    Ok(())
}

/// A fixed-size binary value whose trailing zero bytes the binlog dropped, padded back.
fn fixed<const N: usize>(b: &[u8], what: &str) -> Result<[u8; N], String> {
    let mut a = [0u8; N];
    a.get_mut(..b.len())
        .ok_or_else(|| {
            format!(
                "{what} value of {} bytes in the binlog (at most {N})",
                b.len()
            )
        })?
        .copy_from_slice(b);
    Ok(a)
}

fn push_display(out: &mut Vec<u8>, v: &dyn std::fmt::Display) {
    use std::io::Write as _;
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{v}");
}

/// INET6 text as MariaDB prints it, which is not RFC 5952: the longest run of zero groups
/// becomes `::` even when it is a single group (`1::2:3:4:5:6:7`, `1:2:3:4:5:6:7::`), the first
/// of equally long runs wins, and only `::a.b.c.d` (six zero groups, then a non-zero one) and
/// `::ffff:a.b.c.d` print their last 32 bits dotted (`::255.255.0.1`, but `::fffe:102:304`).
pub(crate) fn inet6_text(b: &[u8; 16]) -> String {
    let mut words = [0u16; 8];
    for (i, w) in words.iter_mut().enumerate() {
        *w = u16::from_be_bytes([b[2 * i], b[2 * i + 1]]);
    }
    // The longest run of zero groups: (start, length), length 0 when there is none.
    let (mut gap, mut gap_len) = (0usize, 0usize);
    let mut i = 0;
    while i < 8 {
        let start = i;
        while i < 8 && words[i] == 0 {
            i += 1;
        }
        if i - start > gap_len {
            (gap, gap_len) = (start, i - start);
        }
        i += 1;
    }
    let mut out = String::with_capacity(39);
    let mut i = 0;
    while i < 8 {
        if gap_len > 0 && i == gap {
            out.push_str(if i == 0 { "::" } else { ":" });
            i += gap_len;
        } else if i == 6
            && gap_len > 0
            && gap == 0
            && (gap_len == 6 || gap_len == 5 && words[5] == 0xffff)
        {
            out.push_str(&std::net::Ipv4Addr::new(b[12], b[13], b[14], b[15]).to_string());
            break;
        } else {
            out.push_str(&format!("{:x}", words[i]));
            if i < 7 {
                out.push(':');
            }
            i += 1;
        }
    }
    out
}

/// Canonical lower-case text of 16 UUID bytes (`8-4-4-4-12`), as MariaDB prints a UUID.
pub fn uuid_text(b: &[u8; 16]) -> String {
    let mut out = Vec::with_capacity(36);
    push_uuid(&mut out, b);
    String::from_utf8_lossy(&out).into_owned()
}

fn push_uuid(out: &mut Vec<u8>, b: &[u8; 16]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, x) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push(b'-');
        }
        out.push(HEX[(x >> 4) as usize]);
        out.push(HEX[(x & 15) as usize]);
    }
}

fn fsp(kind: &ColumnKind) -> u32 {
    match kind {
        ColumnKind::DateTime { fsp } | ColumnKind::Timestamp { fsp } | ColumnKind::Time { fsp } => {
            *fsp
        }
        _ => 0,
    }
}

const POW10: [i64; 7] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000];

/// `v` in decimal with at least `width` digits (zero-padded), as `{v:0width$}` prints it.
fn push_padded(out: &mut Vec<u8>, v: i64, width: usize) {
    // The common case (dates and times): exactly `width` digits, written directly.
    if (1..=6).contains(&width) && (0..POW10[width]).contains(&v) {
        let mut d = [b'0'; 6];
        let mut x = v as u32;
        for slot in d[..width].iter_mut().rev() {
            *slot = b'0' + (x % 10) as u8;
            x /= 10;
        }
        out.extend_from_slice(&d[..width]);
        return;
    }
    let mut b = itoa::Buffer::new();
    let digits = b.format(v.unsigned_abs()).as_bytes();
    if v < 0 {
        out.push(b'-');
    }
    let width = if v < 0 {
        width.saturating_sub(1)
    } else {
        width
    };
    for _ in digits.len()..width {
        out.push(b'0');
    }
    out.extend_from_slice(digits);
}

/// Three zero-padded fields with `sep` between them (`YYYY-MM-DD`, `HH:MM:SS`).
fn push_fields(out: &mut Vec<u8>, fields: [(i64, usize); 3], sep: u8) {
    for (i, (v, width)) in fields.into_iter().enumerate() {
        if i > 0 {
            out.push(sep);
        }
        push_padded(out, v, width);
    }
}

fn push_date(out: &mut Vec<u8>, y: u16, m: u8, d: u8) {
    push_fields(out, [(y as i64, 4), (m as i64, 2), (d as i64, 2)], b'-');
}

fn push_clock(out: &mut Vec<u8>, h: u64, mi: u8, s: u8) {
    push_fields(out, [(h as i64, 2), (mi as i64, 2), (s as i64, 2)], b':');
}

/// `.` and the first `fsp` of the six microsecond digits (nothing when `fsp` is 0).
fn push_fraction(out: &mut Vec<u8>, us: u32, fsp: u32) {
    if fsp > 0 {
        let start = out.len();
        out.push(b'.');
        push_padded(out, us as i64, 6);
        // `us` has at most 6 digits in a valid value; keep `fsp` of them, as `{:06}[..fsp]`.
        let keep = (fsp.min(6) as usize).min(out.len() - start - 1);
        out.truncate(start + 1 + keep);
    }
}

/// A signed column whose value arrived zero-extended (the driver reads 24-bit integers
/// unsigned): values at or above 2^(bits-1) are negative.
fn sign_extend(i: i64, width: IntWidth) -> i64 {
    let bits = match width {
        IntWidth::Tiny => 8,
        IntWidth::Small => 16,
        IntWidth::Medium => 24,
        IntWidth::Int => 32,
        IntWidth::Big => return i,
    };
    if i >= 1 << (bits - 1) && i < 1 << bits {
        i - (1 << bits)
    } else {
        i
    }
}

fn reinterpret_unsigned(i: i64, width: IntWidth) -> u64 {
    let bits = match width {
        IntWidth::Tiny => 8,
        IntWidth::Small => 16,
        IntWidth::Medium => 24,
        IntWidth::Int => 32,
        IntWidth::Big => 64,
    };
    if bits == 64 {
        i as u64
    } else {
        (i as u64) & ((1u64 << bits) - 1)
    }
}

/// The driver's TIMESTAMP text, `secs[.micros]`.
fn parse_epoch(b: &[u8]) -> Result<(i64, u32), String> {
    let s = std::str::from_utf8(b).map_err(|_| "bad TIMESTAMP in the binlog".to_string())?;
    let (secs, micros) = match s.split_once('.') {
        Some((a, f)) => (a, f.parse::<u32>().unwrap_or(0)),
        None => (s, 0),
    };
    let secs: i64 = secs
        .parse()
        .map_err(|_| format!("bad TIMESTAMP {s:?} in the binlog"))?;
    Ok((secs, micros))
}

/// TIMESTAMP: seconds (and microseconds) since the epoch -> `YYYY-MM-DD HH:MM:SS[.f]` UTC.
fn push_epoch(out: &mut Vec<u8>, secs: i64, micros: u32, fsp: u32) {
    if secs == 0 && micros == 0 {
        out.extend_from_slice(b"0000-00-00 00:00:00");
        return;
    }
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    push_padded(out, y, 4);
    out.push(b'-');
    push_padded(out, m as i64, 2);
    out.push(b'-');
    push_padded(out, d as i64, 2);
    out.push(b' ');
    push_clock(
        out,
        (sod / 3600) as u64,
        (sod % 3600 / 60) as u8,
        (sod % 60) as u8,
    );
    push_fraction(out, micros, fsp);
}

fn is_utf8_charset(charset: Option<&str>) -> bool {
    match charset {
        None => true,
        Some(c) => ["utf8mb4", "utf8mb3", "utf8", "ascii", "binary"]
            .iter()
            .any(|u| c.eq_ignore_ascii_case(u)),
    }
}

/// Text in the column's character set as UTF-8 (the snapshot reads with `NAMES utf8mb4`, so the
/// server converts; here we do). MySQL's `latin1` is Windows-1252.
fn decode_text(b: &[u8], charset: Option<&str>, out: &mut Vec<u8>) {
    let Some(enc) = charset.and_then(encoding_of) else {
        out.extend_from_slice(b);
        return;
    };
    out.extend_from_slice(enc.decode_without_bom_handling(b).0.as_bytes());
}

fn encoding_of(charset: &str) -> Option<&'static encoding_rs::Encoding> {
    Some(match charset.to_ascii_lowercase().as_str() {
        "latin1" | "cp1252" => encoding_rs::WINDOWS_1252,
        "latin2" => encoding_rs::ISO_8859_2,
        "greek" => encoding_rs::ISO_8859_7,
        "hebrew" => encoding_rs::ISO_8859_8,
        "cp1250" => encoding_rs::WINDOWS_1250,
        "cp1251" => encoding_rs::WINDOWS_1251,
        "cp1256" => encoding_rs::WINDOWS_1256,
        "cp1257" => encoding_rs::WINDOWS_1257,
        "koi8r" => encoding_rs::KOI8_R,
        "koi8u" => encoding_rs::KOI8_U,
        "sjis" | "cp932" => encoding_rs::SHIFT_JIS,
        "ujis" | "eucjpms" => encoding_rs::EUC_JP,
        "euckr" => encoding_rs::EUC_KR,
        "gbk" | "gb2312" => encoding_rs::GBK,
        "gb18030" => encoding_rs::GB18030,
        "big5" => encoding_rs::BIG5,
        "utf16" => encoding_rs::UTF_16BE,
        "utf16le" => encoding_rs::UTF_16LE,
        _ => return None,
    })
}
