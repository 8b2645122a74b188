//! Per-column encoders: the bytes MySQL prints (text protocol) into JSON.
//!
//! Promises:
//! - An encoder is chosen once per column from its [`ColumnKind`]; encoding a row is a loop of
//!   appends into one reusable buffer, with no allocation for the common types.
//! - Values follow the README's type mapping exactly: integers and decimals keep every digit (never through f64),
//!   zero or invalid dates become `null` (counted), binary is base64, JSON is embedded as JSON.
//! - The output is always one line: JSON documents have their raw line breaks (which can only be
//!   insignificant whitespace in valid JSON) turned into spaces.

pub(crate) mod json;
pub(crate) mod temporal;

use base64::Engine as _;

use crate::catalog::types::ColumnKind;
use crate::config::TypeOptions;

/// How one column's text bytes become JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoder {
    /// Integers, YEAR, DECIMAL (as number), DOUBLE: digits as printed, zerofill stripped.
    Number,
    /// FLOAT, read as the exact double of the 32-bit value (`col + 0E0`: MariaDB prints FLOAT
    /// with only 6 digits) and written as the shortest text that round-trips to that 32-bit value.
    Float32,
    /// DECIMAL as a JSON string with the exact digits.
    DecimalString,
    /// `tinyint(1)`: 0 is false, anything else true.
    Bool,
    /// `bit(n)`: big-endian bytes; `bit(1)` as a boolean.
    Bit {
        /// Emit a boolean rather than an integer.
        as_bool: bool,
    },
    /// DATE: `YYYY-MM-DD`, zero/invalid as null.
    Date,
    /// DATETIME and TIMESTAMP: RFC 3339 UTC, zero/invalid as null.
    DateTime,
    /// Text as a JSON string (also TIME, ENUM, SET, UUID, INET).
    Text,
    /// Bytes as base64.
    Binary,
    /// A JSON document embedded as JSON.
    Json,
    /// A JSON document as a string of JSON text.
    JsonString,
}

impl Encoder {
    /// The encoder for a column kind. `None` for unsupported columns (never selected).
    pub fn for_kind(kind: &ColumnKind, opts: &TypeOptions) -> Option<Encoder> {
        Some(match kind {
            ColumnKind::Boolean => Encoder::Bool,
            ColumnKind::Integer { .. } | ColumnKind::Year | ColumnKind::Double => Encoder::Number,
            ColumnKind::Float => Encoder::Float32,
            ColumnKind::Decimal { .. } if opts.decimal_as_string => Encoder::DecimalString,
            ColumnKind::Decimal { .. } => Encoder::Number,
            ColumnKind::Bit { bits } => Encoder::Bit {
                as_bool: *bits == 1,
            },
            ColumnKind::Date => Encoder::Date,
            ColumnKind::DateTime { .. } | ColumnKind::Timestamp { .. } => Encoder::DateTime,
            ColumnKind::Time { .. }
            | ColumnKind::Text { .. }
            | ColumnKind::Enum { .. }
            | ColumnKind::Set { .. }
            | ColumnKind::Uuid
            | ColumnKind::Inet4
            | ColumnKind::Inet6 => Encoder::Text,
            ColumnKind::Binary => Encoder::Binary,
            ColumnKind::Json if opts.json_as_string => Encoder::JsonString,
            ColumnKind::Json | ColumnKind::Spatial => Encoder::Json,
            ColumnKind::Unsupported => return None,
        })
    }
}

/// Per-column counts of values that could not be emitted as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ColumnWarnings {
    /// Zero or invalid dates emitted as null.
    pub invalid_dates: u64,
    /// Text that was not valid UTF-8: fatal, the run stops before anything holding it is
    /// written (`StreamPlan::check_text`).
    pub invalid_utf8: u64,
    /// JSON column text that was not valid JSON (emitted as a string).
    pub invalid_json: u64,
    /// Numbers MySQL printed in a form JSON cannot hold (emitted as a string).
    pub invalid_number: u64,
}

impl ColumnWarnings {
    /// Whether anything was counted.
    pub fn any(&self) -> bool {
        *self != ColumnWarnings::default()
    }

    /// The non-zero counts in words, e.g. `2 zero or invalid dates emitted as null`.
    pub fn describe(&self) -> String {
        [
            (self.invalid_dates, "zero or invalid dates emitted as null"),
            (self.invalid_utf8, "texts with invalid UTF-8 (not written)"),
            (
                self.invalid_json,
                "invalid JSON documents emitted as strings",
            ),
            (
                self.invalid_number,
                "non-numeric numbers emitted as strings",
            ),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect::<Vec<_>>()
        .join(", ")
    }
}

/// Appends the JSON for one cell. `None` is SQL NULL.
#[inline]
pub fn encode_cell(
    enc: Encoder,
    cell: Option<&[u8]>,
    out: &mut Vec<u8>,
    warn: &mut ColumnWarnings,
) {
    let Some(b) = cell else {
        out.extend_from_slice(b"null");
        return;
    };
    match enc {
        Encoder::Number => write_number(out, b, warn),
        Encoder::Float32 => match std::str::from_utf8(b)
            .ok()
            .and_then(|t| t.parse::<f64>().ok())
        {
            Some(v) if (v as f32).is_finite() => write_f32(out, v as f32),
            _ => write_number(out, b, warn),
        },
        Encoder::DecimalString => {
            out.push(b'"');
            out.extend_from_slice(strip_zerofill(b));
            out.push(b'"');
        }
        Encoder::Bool => {
            let falsy = b.iter().all(|&c| c == b'0' || c == b'-') && !b.is_empty();
            out.extend_from_slice(if falsy { b"false" } else { b"true" });
        }
        Encoder::Bit { as_bool } => {
            let v = b.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64);
            if as_bool {
                out.extend_from_slice(if v != 0 { b"true" } else { b"false" });
            } else {
                out.extend_from_slice(itoa::Buffer::new().format(v).as_bytes());
            }
        }
        Encoder::Date => {
            if temporal::valid_date(b) {
                out.push(b'"');
                out.extend_from_slice(b);
                out.push(b'"');
            } else {
                warn.invalid_dates += 1;
                out.extend_from_slice(b"null");
            }
        }
        Encoder::DateTime => {
            if !temporal::write_datetime(out, b) {
                warn.invalid_dates += 1;
                out.extend_from_slice(b"null");
            }
        }
        Encoder::Text => write_text(out, b, warn),
        Encoder::Binary => {
            out.push(b'"');
            let start = out.len();
            let len = base64::encoded_len(b.len(), true).unwrap_or(0);
            out.resize(start + len, 0);
            let written = base64::engine::general_purpose::STANDARD
                .encode_slice(b, &mut out[start..])
                .unwrap_or(0);
            out.truncate(start + written);
            out.push(b'"');
        }
        Encoder::Json => {
            if json::is_valid(b) {
                let start = out.len();
                out.extend_from_slice(b);
                for c in &mut out[start..] {
                    if *c == b'\n' || *c == b'\r' {
                        *c = b' ';
                    }
                }
            } else {
                warn.invalid_json += 1;
                write_text(out, b, warn);
            }
        }
        Encoder::JsonString => write_text(out, b, warn),
    }
}

/// Leading zeros of ZEROFILL columns (`00000042`, `000003.50`) are not valid JSON.
#[inline]
fn strip_zerofill(b: &[u8]) -> &[u8] {
    if b.len() > 1 && b[0] == b'0' && b[1].is_ascii_digit() {
        let nz = b.iter().position(|&c| c != b'0').unwrap_or(b.len());
        // Keep one zero before a '.' or when everything was zeros.
        if nz == b.len() || b[nz] == b'.' {
            &b[nz - 1..]
        } else {
            &b[nz..]
        }
    } else {
        b
    }
}

#[inline]
fn write_number(out: &mut Vec<u8>, b: &[u8], warn: &mut ColumnWarnings) {
    let b = strip_zerofill(b);
    let ok = !b.is_empty()
        && (b[0].is_ascii_digit() || (b[0] == b'-' && b.len() > 1 && b[1].is_ascii_digit()))
        && b.iter()
            .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'.' | b'e' | b'E' | b'+'));
    if ok {
        out.extend_from_slice(b);
    } else {
        // e.g. "inf" or "nan" from a float column: keep the text rather than corrupt the line.
        warn.invalid_number += 1;
        write_text(out, b, warn);
    }
}

/// The shortest text that parses back to `v`, without a needless `.0`.
pub(crate) fn write_f32(out: &mut Vec<u8>, v: f32) {
    let mut buf = ryu::Buffer::new();
    let t = buf.format_finite(v);
    out.extend_from_slice(t.strip_suffix(".0").unwrap_or(t).as_bytes());
}

#[inline]
fn write_text(out: &mut Vec<u8>, b: &[u8], warn: &mut ColumnWarnings) {
    let start = out.len();
    if !json::write_checked(out, b, false) {
        out.truncate(start);
        warn.invalid_utf8 += 1;
        json::write_str(out, &String::from_utf8_lossy(b));
    }
}

/// Appends a base64 string for bytes (for bookmarks of binary keys).
pub(crate) fn base64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// Decodes a base64 bookmark value.
pub(crate) fn unbase64(s: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD.decode(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(e: Encoder, v: &[u8]) -> String {
        let mut out = Vec::new();
        let mut w = ColumnWarnings::default();
        encode_cell(e, Some(v), &mut out, &mut w);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers() {
        assert_eq!(
            enc(Encoder::Number, b"-9223372036854775808"),
            "-9223372036854775808"
        );
        assert_eq!(
            enc(Encoder::Number, b"18446744073709551615"),
            "18446744073709551615"
        );
        assert_eq!(enc(Encoder::Number, b"00000042"), "42");
        assert_eq!(enc(Encoder::Number, b"000003.50"), "3.50");
        assert_eq!(enc(Encoder::Number, b"000000.00"), "0.00");
        assert_eq!(enc(Encoder::Number, b"0000"), "0");
        assert_eq!(enc(Encoder::Number, b"0"), "0");
        assert_eq!(enc(Encoder::Number, b"0.5"), "0.5");
        assert_eq!(
            enc(Encoder::Number, b"1.7976931348623157e308"),
            "1.7976931348623157e308"
        );
        assert_eq!(enc(Encoder::Number, b"inf"), "\"inf\"");
        assert_eq!(enc(Encoder::DecimalString, b"-12.30"), "\"-12.30\"");
        // The exact double of a FLOAT, as `col + 0E0` prints it.
        assert_eq!(enc(Encoder::Float32, b"3.1415927410125732"), "3.1415927");
        assert_eq!(enc(Encoder::Float32, b"3.140000104904175"), "3.14");
        assert_eq!(enc(Encoder::Float32, b"0"), "0");
        assert_eq!(
            enc(Encoder::Float32, b"3.4028234663852886e38"),
            "3.4028235e38"
        );
    }

    #[test]
    fn bits_bools_binary() {
        assert_eq!(enc(Encoder::Bool, b"0"), "false");
        assert_eq!(enc(Encoder::Bool, b"1"), "true");
        assert_eq!(enc(Encoder::Bool, b"5"), "true");
        assert_eq!(enc(Encoder::Bool, b"-1"), "true");
        assert_eq!(enc(Encoder::Bit { as_bool: true }, &[0]), "false");
        assert_eq!(enc(Encoder::Bit { as_bool: false }, &[0x01, 0x02]), "258");
        assert_eq!(
            enc(Encoder::Bit { as_bool: false }, &[0xff; 8]),
            "18446744073709551615"
        );
        assert_eq!(enc(Encoder::Binary, &[0, 0xff, 0x10]), "\"AP8Q\"");
        assert_eq!(enc(Encoder::Binary, b""), "\"\"");
    }

    #[test]
    fn json_documents() {
        assert_eq!(enc(Encoder::Json, b"{\"a\":\n[1, 2]}"), "{\"a\": [1, 2]}");
        assert_eq!(enc(Encoder::Json, b"null"), "null");
        assert_eq!(
            enc(Encoder::Json, b"12345678901234567890.123"),
            "12345678901234567890.123"
        );
        assert_eq!(enc(Encoder::Json, b"{bad"), "\"{bad\"");
        assert_eq!(enc(Encoder::JsonString, b"{\"a\":1}"), "\"{\\\"a\\\":1}\"");
    }

    #[test]
    fn invalid_utf8_is_counted() {
        let mut out = Vec::new();
        let mut w = ColumnWarnings::default();
        encode_cell(Encoder::Text, Some(&[b'a', 0xff]), &mut out, &mut w);
        assert_eq!(w.invalid_utf8, 1);
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\u{fffd}\"");
    }
}
