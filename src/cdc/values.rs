//! Binlog row values into the same bytes the text protocol would print, so the snapshot's
//! per-column encoders (and so every value in RECORDs) are shared by both paths.
//!
//! Binlog encodings differ from the text protocol: ENUM/SET arrive as an index/bitmask,
//! TIMESTAMP as epoch seconds, unsigned integers as signed numbers when the table map carries
//! no signedness (MySQL's MINIMAL and MariaDB's NO_LOG row metadata), strings in the column's
//! own character set, DECIMAL and JSON in binary form (decoded by the driver).

use mysql::binlog::value::BinlogValue;
use mysql::Value;

use crate::catalog::types::{ColumnKind, IntWidth};
use crate::config::Flavor;
use crate::singer::time::civil_from_days;

/// What a column needs for decoding, beyond its kind.
#[derive(Clone, Debug)]
pub struct ColumnDecoding {
    /// The column kind (from information_schema).
    pub kind: ColumnKind,
    /// The column's character set (`latin1`, `utf8mb4`, ...), for text.
    pub charset: Option<String>,
    /// `binary(n)`: the fixed length the server pads to with 0x00.
    pub fixed_binary_len: Option<usize>,
}

/// Whether LOG_BASED can decode this kind exactly on this server (others are refused at plan
/// time). Spatial values are printed as MariaDB's `ST_AsGeoJSON` prints them; MySQL's returns a
/// JSON document with its own number spelling, which is not reproduced (nor checked: no MySQL
/// server to compare with), so spatial columns are refused on MySQL.
pub(crate) fn supported(kind: &ColumnKind, flavor: Flavor) -> bool {
    match kind {
        ColumnKind::Unsupported => false,
        ColumnKind::Spatial => flavor == Flavor::Mariadb,
        _ => true,
    }
}

/// MySQL's binary JSON as JSON text. Like MySQL's own printing, a DECIMAL inside a document is
/// a number with every digit (the driver's conversion would make it a string); every other
/// scalar is written as the driver converts it.
fn json_text(dom: mysql_common::binlog::jsonb::JsonDom, out: &mut String) {
    use mysql_common::binlog::jsonb::{JsonContainer, JsonDom, JsonNumber, JsonScalar};
    match dom {
        JsonDom::Container(JsonContainer::Array(items)) => {
            out.push('[');
            for (i, item) in items.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_text(item, out);
            }
            out.push(']');
        }
        JsonDom::Container(JsonContainer::Object(members)) => {
            out.push('{');
            for (i, (key, value)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(key).to_string());
                out.push(':');
                json_text(value, out);
            }
            out.push('}');
        }
        JsonDom::Scalar(JsonScalar::Number(JsonNumber::Decimal(d))) => {
            let digits = d.to_string();
            if serde_json::from_str::<serde_json::Number>(&digits).is_ok() {
                out.push_str(&digits);
            } else {
                out.push_str(&serde_json::Value::String(digits).to_string());
            }
        }
        JsonDom::Scalar(scalar) => out.push_str(&serde_json::Value::from(scalar).to_string()),
    }
}

/// The text-protocol bytes of a binlog value, or None for NULL.
pub fn text_bytes(col: &ColumnDecoding, v: &BinlogValue<'_>) -> Result<Option<Vec<u8>>, String> {
    let value = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => {
            let dom = j
                .clone()
                .parse()
                .map_err(|e| format!("cannot decode binary JSON: {e}"))?;
            let mut text = String::new();
            json_text(dom, &mut text);
            return Ok(Some(text.into_bytes()));
        }
        BinlogValue::JsonDiff(_) => {
            return Err(
                "partial JSON updates (binlog_row_value_options=PARTIAL_JSON) are not supported: set binlog_row_value_options='' on the server"
                    .into(),
            )
        }
    };
    let bytes = match (value, &col.kind) {
        (Value::NULL, _) => return Ok(None),
        (
            Value::Int(i),
            ColumnKind::Integer {
                width,
                unsigned: true,
            },
        ) => reinterpret_unsigned(*i, *width).to_string().into_bytes(),
        (
            Value::Int(i),
            ColumnKind::Integer {
                width,
                unsigned: false,
            },
        ) => sign_extend(*i, *width).to_string().into_bytes(),
        (Value::Int(i), ColumnKind::Enum { values }) => {
            let idx = *i as usize;
            if idx == 0 {
                Vec::new()
            } else {
                values
                    .get(idx - 1)
                    .ok_or_else(|| {
                        format!(
                            "ENUM index {idx} is beyond the column's {} labels",
                            values.len()
                        )
                    })?
                    .clone()
                    .into_bytes()
            }
        }
        (Value::Int(i), _) => i.to_string().into_bytes(),
        (Value::UInt(u), _) => u.to_string().into_bytes(),
        (Value::Float(f), _) => {
            // The exact 32-bit value as a double, as the snapshot reads it (`col + 0E0`).
            ryu::Buffer::new().format(*f as f64).as_bytes().to_vec()
        }
        (Value::Double(f), _) => ryu::Buffer::new().format(*f).as_bytes().to_vec(),
        (Value::Date(y, m, d, h, mi, s, us), ColumnKind::Date) => {
            let _ = (h, mi, s, us);
            format!("{y:04}-{m:02}-{d:02}").into_bytes()
        }
        (Value::Date(y, m, d, h, mi, s, us), kind) => {
            let mut t = format!("{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}");
            push_fraction(&mut t, *us, fsp(kind));
            t.into_bytes()
        }
        (Value::Time(neg, days, h, mi, s, us), kind) => {
            let hours = *days as u64 * 24 + *h as u64;
            let mut t = format!("{}{hours:02}:{mi:02}:{s:02}", if *neg { "-" } else { "" });
            push_fraction(&mut t, *us, fsp(kind));
            t.into_bytes()
        }
        (Value::Bytes(b), ColumnKind::Timestamp { fsp }) => epoch_to_text(b, *fsp)?,
        (Value::Bytes(b), ColumnKind::Year) if b.as_slice() == b"1900" => b"0".to_vec(),
        (Value::Bytes(b), ColumnKind::Set { values }) => {
            let mask = b.iter().rev().fold(0u64, |acc, &x| (acc << 8) | x as u64);
            let labels: Vec<&str> = values
                .iter()
                .enumerate()
                .filter(|(i, _)| *i < 64 && mask & (1u64 << i) != 0)
                .map(|(_, s)| s.as_str())
                .collect();
            labels.join(",").into_bytes()
        }
        (Value::Bytes(b), ColumnKind::Binary) => {
            let mut b = b.clone();
            if let Some(n) = col.fixed_binary_len {
                if b.len() < n {
                    b.resize(n, 0);
                }
            }
            b
        }
        (Value::Bytes(b), ColumnKind::Spatial) => super::geojson::from_internal(b)?.into_bytes(),
        // MariaDB logs UUIDs in their canonical byte order (not the swapped order it stores
        // version 1-5 UUIDs in), as fixed-size binary whose trailing zero bytes are dropped.
        (Value::Bytes(b), ColumnKind::Uuid) => uuid_text(&fixed::<16>(b, "UUID")?).into_bytes(),
        (Value::Bytes(b), ColumnKind::Inet4) => std::net::Ipv4Addr::from(fixed::<4>(b, "INET4")?)
            .to_string()
            .into_bytes(),
        (Value::Bytes(b), ColumnKind::Inet6) => inet6_text(&fixed::<16>(b, "INET6")?).into_bytes(),
        (Value::Bytes(b), ColumnKind::Text { .. } | ColumnKind::Json | ColumnKind::Enum { .. }) => {
            decode_text(b, col.charset.as_deref())
        }
        (Value::Bytes(b), _) => b.clone(),
    };
    Ok(Some(bytes))
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
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn fsp(kind: &ColumnKind) -> u32 {
    match kind {
        ColumnKind::DateTime { fsp } | ColumnKind::Timestamp { fsp } | ColumnKind::Time { fsp } => {
            *fsp
        }
        _ => 0,
    }
}

fn push_fraction(t: &mut String, us: u32, fsp: u32) {
    if fsp > 0 {
        let digits = format!("{us:06}");
        t.push('.');
        t.push_str(&digits[..fsp.min(6) as usize]);
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

/// TIMESTAMP in the binlog: `secs[.micros]` since the epoch -> `YYYY-MM-DD HH:MM:SS[.f]` UTC.
fn epoch_to_text(b: &[u8], fsp: u32) -> Result<Vec<u8>, String> {
    let s = std::str::from_utf8(b).map_err(|_| "bad TIMESTAMP in the binlog".to_string())?;
    let (secs, micros) = match s.split_once('.') {
        Some((a, f)) => (a, f.parse::<u32>().unwrap_or(0)),
        None => (s, 0),
    };
    let secs: i64 = secs
        .parse()
        .map_err(|_| format!("bad TIMESTAMP {s:?} in the binlog"))?;
    if secs == 0 && micros == 0 {
        return Ok(b"0000-00-00 00:00:00".to_vec());
    }
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    let mut t = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    );
    push_fraction(&mut t, micros, fsp);
    Ok(t.into_bytes())
}

/// Text in the column's character set as UTF-8 (the snapshot reads with `NAMES utf8mb4`, so the
/// server converts; here we do). MySQL's `latin1` is Windows-1252.
fn decode_text(b: &[u8], charset: Option<&str>) -> Vec<u8> {
    let enc = match charset.unwrap_or("utf8mb4").to_ascii_lowercase().as_str() {
        "utf8mb4" | "utf8mb3" | "utf8" | "ascii" | "binary" => return b.to_vec(),
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
        _ => return b.to_vec(),
    };
    enc.decode_without_bom_handling(b)
        .0
        .into_owned()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(kind: ColumnKind) -> ColumnDecoding {
        ColumnDecoding {
            kind,
            charset: None,
            fixed_binary_len: None,
        }
    }

    fn text(c: &ColumnDecoding, v: Value) -> String {
        String::from_utf8(text_bytes(c, &BinlogValue::Value(v)).unwrap().unwrap()).unwrap()
    }

    #[test]
    fn integers_and_enums() {
        let u = col(ColumnKind::Integer {
            width: IntWidth::Int,
            unsigned: true,
        });
        assert_eq!(text(&u, Value::Int(-1)), "4294967295");
        let ub = col(ColumnKind::Integer {
            width: IntWidth::Big,
            unsigned: true,
        });
        assert_eq!(text(&ub, Value::Int(-1)), "18446744073709551615");
        let m = col(ColumnKind::Integer {
            width: IntWidth::Medium,
            unsigned: false,
        });
        assert_eq!(text(&m, Value::Int(8_388_608)), "-8388608");
        assert_eq!(text(&m, Value::Int(-5)), "-5");
        assert_eq!(text(&m, Value::Int(8_388_607)), "8388607");
        let e = col(ColumnKind::Enum {
            values: vec!["a".into(), "b".into()],
        });
        assert_eq!(text(&e, Value::Int(2)), "b");
        assert_eq!(text(&e, Value::Int(0)), "");
        let s = col(ColumnKind::Set {
            values: vec!["a".into(), "b".into(), "c".into()],
        });
        assert_eq!(text(&s, Value::Bytes(vec![0b101])), "a,c");
    }

    #[test]
    fn temporal() {
        let dt = col(ColumnKind::DateTime { fsp: 3 });
        assert_eq!(
            text(&dt, Value::Date(2024, 1, 2, 3, 4, 5, 123_456)),
            "2024-01-02 03:04:05.123"
        );
        let t = col(ColumnKind::Time { fsp: 6 });
        assert_eq!(
            text(&t, Value::Time(true, 34, 22, 59, 59, 0)),
            "-838:59:59.000000"
        );
        let ts = col(ColumnKind::Timestamp { fsp: 0 });
        assert_eq!(
            text(&ts, Value::Bytes(b"1700000000".to_vec())),
            "2023-11-14 22:13:20"
        );
        assert_eq!(
            text(&ts, Value::Bytes(b"0".to_vec())),
            "0000-00-00 00:00:00"
        );
        let d = col(ColumnKind::Date);
        assert_eq!(text(&d, Value::Date(0, 0, 0, 0, 0, 0, 0)), "0000-00-00");
        let y = col(ColumnKind::Year);
        assert_eq!(text(&y, Value::Bytes(b"1900".to_vec())), "0");
    }

    #[test]
    fn text_and_binary() {
        let l = ColumnDecoding {
            kind: ColumnKind::Text { max_chars: None },
            charset: Some("latin1".into()),
            fixed_binary_len: None,
        };
        assert_eq!(text(&l, Value::Bytes(vec![0x80, b'e', 0xe9])), "€eé");
        let b = ColumnDecoding {
            kind: ColumnKind::Binary,
            charset: None,
            fixed_binary_len: Some(4),
        };
        assert_eq!(
            text_bytes(&b, &BinlogValue::Value(Value::Bytes(vec![0xff])))
                .unwrap()
                .unwrap(),
            vec![0xff, 0, 0, 0]
        );
        let f = col(ColumnKind::Float);
        assert_eq!(text(&f, Value::Float(2.5)), "2.5");
        assert_eq!(text(&f, Value::Float(0.1)), "0.10000000149011612");
        let i6 = col(ColumnKind::Inet6);
        let mut a = [0u8; 16];
        a[10] = 0xff;
        a[11] = 0xff;
        a[12..].copy_from_slice(&[192, 0, 2, 1]);
        assert_eq!(text(&i6, Value::Bytes(a.to_vec())), "::ffff:192.0.2.1");
    }

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Binlog bytes as MariaDB 10.11 logged them (mariadb-binlog -vv: canonical order, trailing
    /// zero bytes dropped) and the text the server prints for the same value.
    #[test]
    fn uuids_from_their_binlog_bytes() {
        let u = col(ColumnKind::Uuid);
        for (bytes, want) in [
            // Version 1 (stored swapped in the table, logged in canonical order).
            (
                "6ccd780cbaba102695645b8c656024db",
                "6ccd780c-baba-1026-9564-5b8c656024db",
            ),
            // Version 4, and a version 7 (stored unswapped).
            (
                "123e4567e89b42d3a4564266141740",
                "123e4567-e89b-42d3-a456-426614174000",
            ),
            (
                "01890a5dac96774bbcceb302099a8057",
                "01890a5d-ac96-774b-bcce-b302099a8057",
            ),
            // Variant 0 (no swap), and version 0 with the variant bit (swapped in the table).
            (
                "123e4567e89b12d374564266141740",
                "123e4567-e89b-12d3-7456-426614174000",
            ),
            ("000000000000010080", "00000000-0000-0100-8000-000000000000"),
            ("", "00000000-0000-0000-0000-000000000000"),
            (
                "00000000000000000000000000000001",
                "00000000-0000-0000-0000-000000000001",
            ),
            (
                "ffffffffffffffffffffffffffffffff",
                "ffffffff-ffff-ffff-ffff-ffffffffffff",
            ),
            (
                "1234567812341234923412345678",
                "12345678-1234-1234-9234-123456780000",
            ),
        ] {
            assert_eq!(text(&u, Value::Bytes(unhex(bytes))), want, "{bytes}");
        }
        assert!(text_bytes(&u, &BinlogValue::Value(Value::Bytes(vec![1; 17]))).is_err());
    }

    /// Each address and the text MariaDB 10.11 prints for it (`CAST(... AS INET6)`).
    #[test]
    fn inet6_text_is_mariadbs_not_rfc_5952() {
        let i6 = col(ColumnKind::Inet6);
        for (hex, want) in [
            ("", "::"),
            ("00000000000000000000000000000001", "::1"),
            ("00000000000000000000000001020304", "::1.2.3.4"),
            ("00000000000000000000000000010000", "::0.1.0.0"),
            ("00000000000000000000000000000100", "::100"),
            ("0000000000000000000000000000ffff", "::ffff"),
            ("00000000000000000000ffff01020304", "::ffff:1.2.3.4"),
            ("00000000000000000000ffff", "::ffff:0.0.0.0"),
            ("000000000000000000000000ffff0001", "::255.255.0.1"),
            ("00000000000000000000fffe01020304", "::fffe:102:304"),
            ("00000000000000000001ffff01020304", "::1:ffff:102:304"),
            ("0064ff9b000000000000000001020304", "64:ff9b::102:304"),
            ("00000000000000000000000100000000", "::1:0:0"),
            ("00010000000200030004000500060007", "1::2:3:4:5:6:7"),
            ("00010002000300040005000600070000", "1:2:3:4:5:6:7::"),
            ("00010000000000020000000000000003", "1:0:0:2::3"),
            ("00010000000000020000000000030004", "1::2:0:0:3:4"),
            ("00010000000100000001000000010000", "1::1:0:1:0:1:0"),
            ("0001", "1::"),
            ("00000000000100000000000000000000", "0:0:1::"),
            ("00000001000200030004000500060007", "::1:2:3:4:5:6:7"),
            ("00010002000300040005000600070008", "1:2:3:4:5:6:7:8"),
            ("20010db8000000000000000000000001", "2001:db8::1"),
            ("fe80", "fe80::"),
            (
                "ffffffffffffffffffffffffffffffff",
                "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
            ),
        ] {
            assert_eq!(text(&i6, Value::Bytes(unhex(hex))), want, "{hex}");
        }
        let i4 = col(ColumnKind::Inet4);
        assert_eq!(text(&i4, Value::Bytes(vec![10])), "10.0.0.0");
        assert_eq!(text(&i4, Value::Bytes(vec![])), "0.0.0.0");
        assert_eq!(text(&i4, Value::Bytes(vec![0, 0, 0, 1])), "0.0.0.1");
        assert_eq!(text(&i4, Value::Bytes(vec![255; 4])), "255.255.255.255");
        assert!(text_bytes(&i4, &BinlogValue::Value(Value::Bytes(vec![1; 5]))).is_err());
    }

    #[test]
    fn spatial_only_on_mariadb() {
        assert!(supported(&ColumnKind::Spatial, Flavor::Mariadb));
        assert!(!supported(&ColumnKind::Spatial, Flavor::Mysql));
        assert!(supported(&ColumnKind::Uuid, Flavor::Mariadb));
        assert!(supported(&ColumnKind::Inet6, Flavor::Mariadb));
        assert!(!supported(&ColumnKind::Unsupported, Flavor::Mariadb));
        let g = col(ColumnKind::Spatial);
        let mut p = 4326u32.to_le_bytes().to_vec();
        p.push(1);
        p.extend(1u32.to_le_bytes());
        p.extend(0.000001f64.to_le_bytes());
        p.extend(1234567890123456f64.to_le_bytes());
        assert_eq!(
            text(&g, Value::Bytes(p)),
            r#"{"type": "Point", "coordinates": [0.000001, 1.234567890123456e15]}"#
        );
    }
}
