//! Binlog row values into the same bytes the text protocol would print, so the snapshot's
//! per-column encoders (and so every value in RECORDs) are shared by both paths.
//!
//! Binlog encodings differ from the text protocol: ENUM/SET arrive as an index/bitmask,
//! TIMESTAMP as epoch seconds, unsigned integers as signed numbers when the table map carries
//! no signedness (MySQL's MINIMAL and MariaDB's NO_LOG row metadata), strings in the column's
//! own character set, DECIMAL and JSON in binary form (decoded by the driver).

use mysql::binlog::value::BinlogValue;
use mysql::Value;

use crate::catalog::types::ColumnKind;
use crate::cdc::text::{write_text, Raw};
use crate::config::Flavor;

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

/// The text-protocol bytes of a value as the driver (`mysql_common`) decoded it, or None for
/// NULL. The row decoder (`rows`) does not go through here; the differential tests use it as
/// their oracle, and the recorded-binlog tests to read values.
pub fn text_bytes(col: &ColumnDecoding, v: &BinlogValue<'_>) -> Result<Option<Vec<u8>>, String> {
    let value = match v {
        BinlogValue::Value(v) => v,
        BinlogValue::Jsonb(j) => return jsonb_text(j).map(|t| Some(t.into_bytes())),
        BinlogValue::JsonDiff(_) => return Err(PARTIAL_JSON.into()),
    };
    let raw = match value {
        Value::NULL => Raw::Null,
        Value::Int(i) => Raw::Int(*i),
        Value::UInt(u) => Raw::UInt(*u),
        Value::Float(f) => Raw::Float(*f),
        Value::Double(f) => Raw::Double(*f),
        Value::Date(y, m, d, h, mi, s, us) => Raw::Date(*y, *m, *d, *h, *mi, *s, *us),
        Value::Time(neg, days, h, mi, s, us) => Raw::Time(*neg, *days, *h, *mi, *s, *us),
        Value::Bytes(b) => Raw::Bytes(b),
    };
    let mut out = Vec::new();
    Ok(write_text(col, raw, &mut out)?.then_some(out))
}

/// Why a partial JSON update cannot be followed.
pub(crate) const PARTIAL_JSON: &str = "partial JSON updates (binlog_row_value_options=PARTIAL_JSON) are not supported: set binlog_row_value_options='' on the server";

/// MySQL's binary JSON as JSON text.
pub(crate) fn jsonb_text(j: &mysql_common::binlog::jsonb::Value<'_>) -> Result<String, String> {
    let dom = j
        .clone()
        .parse()
        .map_err(|e| format!("cannot decode binary JSON: {e}"))?;
    let mut text = String::new();
    json_text(dom, &mut text);
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::IntWidth;

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
