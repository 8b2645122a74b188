//! Bookmark values: from a row's raw bytes into state JSON, and from state JSON back into SQL
//! literals for resuming.
//!
//! Integers are JSON numbers; date-times are RFC 3339 (as in RECORDs, pipelinewise-compatible);
//! binary keys are base64; everything else (decimals included, so no float ever touches them)
//! is the exact text MySQL printed.

use serde_json::Value;

use crate::catalog::types::ColumnKind;
use crate::encode::temporal::{rfc3339_to_mysql, valid_date, write_datetime};
use crate::source::query::{binary_literal, text_literal};

/// The bookmark value of a cell, or `None` for NULL and zero dates (not usable as positions).
pub(crate) fn value_from_cell(kind: &ColumnKind, cell: Option<&[u8]>) -> Option<Value> {
    let b = cell?;
    match kind {
        ColumnKind::Integer { .. } | ColumnKind::Boolean | ColumnKind::Year => {
            let text = std::str::from_utf8(b).ok()?;
            let trimmed = text.trim_start_matches('0');
            let digits = if trimmed.is_empty() || trimmed.starts_with('.') {
                "0"
            } else {
                trimmed
            };
            digits
                .parse::<i64>()
                .map(Value::from)
                .or_else(|_| digits.parse::<u64>().map(Value::from))
                .ok()
                .or_else(|| Some(Value::String(text.to_string())))
        }
        ColumnKind::Binary => Some(Value::String(crate::encode::base64(b))),
        ColumnKind::Date => {
            valid_date(b).then(|| Value::String(String::from_utf8_lossy(b).into_owned()))
        }
        ColumnKind::DateTime { .. } | ColumnKind::Timestamp { .. } => {
            let mut out = Vec::with_capacity(40);
            if !write_datetime(&mut out, b) {
                return None;
            }
            // write_datetime produced a quoted JSON string.
            serde_json::from_slice(&out).ok()
        }
        _ => Some(Value::String(String::from_utf8_lossy(b).into_owned())),
    }
}

/// Whether `t` is one number as SQL and JSON write it: `-?digits[.digits][(e|E)[+-]digits]`
/// (so never an expression such as `1-2`).
fn is_number(t: &str) -> bool {
    fn digits(b: &[u8]) -> usize {
        b.iter().take_while(|c| c.is_ascii_digit()).count()
    }
    let b = t.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let int = digits(&b[i..]);
    if int == 0 {
        return false;
    }
    i += int;
    if b.get(i) == Some(&b'.') {
        let frac = digits(&b[i + 1..]);
        if frac == 0 {
            return false;
        }
        i += 1 + frac;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let exp = digits(&b[i..]);
        if exp == 0 {
            return false;
        }
        i += exp;
    }
    i == b.len()
}

/// The SQL literal for a bookmark value of a column of `kind`.
pub(crate) fn literal(kind: &ColumnKind, v: &Value) -> Result<String, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        other => return Err(format!("unusable bookmark value {other}")),
    };
    match kind {
        ColumnKind::Integer { .. }
        | ColumnKind::Boolean
        | ColumnKind::Year
        | ColumnKind::Decimal { .. }
        | ColumnKind::Float
        | ColumnKind::Double => {
            if is_number(&text) {
                Ok(text)
            } else {
                Err(format!("'{text}' is not a number"))
            }
        }
        ColumnKind::Date | ColumnKind::DateTime { .. } | ColumnKind::Timestamp { .. } => {
            rfc3339_to_mysql(&text)
                .map(|t| format!("'{t}'"))
                .ok_or_else(|| format!("'{text}' is not a UTC date-time"))
        }
        ColumnKind::Time { .. } => {
            if text
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b':' | b'.' | b'-'))
            {
                Ok(format!("'{text}'"))
            } else {
                Err(format!("'{text}' is not a time"))
            }
        }
        ColumnKind::Binary => crate::encode::unbase64(&text)
            .map(|b| binary_literal(&b))
            .ok_or_else(|| "binary key bookmark is not base64".to_string()),
        _ => Ok(text_literal(&text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::types::IntWidth;
    use serde_json::json;

    #[test]
    fn round_trips() {
        let int = ColumnKind::Integer {
            width: IntWidth::Big,
            unsigned: true,
        };
        let v = value_from_cell(&int, Some(b"18446744073709551615")).unwrap();
        assert_eq!(v, json!(18446744073709551615u64));
        assert_eq!(literal(&int, &v).unwrap(), "18446744073709551615");
        assert_eq!(value_from_cell(&int, Some(b"00042")).unwrap(), json!(42));
        let dt = ColumnKind::DateTime { fsp: 6 };
        let v = value_from_cell(&dt, Some(b"2024-01-02 03:04:05.000001")).unwrap();
        assert_eq!(v, json!("2024-01-02T03:04:05.000001+00:00"));
        assert_eq!(literal(&dt, &v).unwrap(), "'2024-01-02 03:04:05.000001'");
        assert_eq!(value_from_cell(&dt, Some(b"0000-00-00 00:00:00")), None);
        let dec = ColumnKind::Decimal {
            precision: 65,
            scale: 30,
        };
        let v = value_from_cell(&dec, Some(b"-1.000000000000000000000000000001")).unwrap();
        assert_eq!(
            literal(&dec, &v).unwrap(),
            "-1.000000000000000000000000000001"
        );
        assert!(literal(&dec, &json!("1; DROP TABLE x")).is_err());
        let bin = ColumnKind::Binary;
        let v = value_from_cell(&bin, Some(&[0, 255])).unwrap();
        assert_eq!(literal(&bin, &v).unwrap(), "X'00FF'");
        let text = ColumnKind::Text {
            max_chars: Some(10),
        };
        assert_eq!(literal(&text, &json!("a'b")).unwrap(), "_utf8mb4 X'612762'");
    }

    fn int(unsigned: bool) -> ColumnKind {
        ColumnKind::Integer {
            width: IntWidth::Big,
            unsigned,
        }
    }

    #[test]
    fn integer_cells_become_json_numbers() {
        let i = int(false);
        assert_eq!(value_from_cell(&i, None), None, "NULL");
        assert_eq!(value_from_cell(&i, Some(b"0")), Some(json!(0)));
        assert_eq!(value_from_cell(&i, Some(b"000")), Some(json!(0)));
        assert_eq!(value_from_cell(&i, Some(b"-7")), Some(json!(-7)));
        assert_eq!(
            value_from_cell(&i, Some(b"-9223372036854775808")),
            Some(json!(i64::MIN))
        );
        assert_eq!(
            value_from_cell(&int(true), Some(b"9223372036854775808")),
            Some(json!(9223372036854775808u64))
        );
        assert_eq!(
            value_from_cell(&i, Some(b"99999999999999999999")),
            Some(json!("99999999999999999999")),
            "beyond u64: the exact text"
        );
        assert_eq!(value_from_cell(&i, Some(b"\xff")), None, "not UTF-8");
        assert_eq!(
            value_from_cell(&ColumnKind::Boolean, Some(b"1")),
            Some(json!(1))
        );
        assert_eq!(
            value_from_cell(&ColumnKind::Year, Some(b"2024")),
            Some(json!(2024))
        );
        assert_eq!(
            value_from_cell(&ColumnKind::Year, Some(b"0000")),
            Some(json!(0))
        );
    }

    #[test]
    fn temporal_cells_and_zero_dates() {
        let date = ColumnKind::Date;
        assert_eq!(
            value_from_cell(&date, Some(b"2024-02-29")),
            Some(json!("2024-02-29"))
        );
        assert_eq!(value_from_cell(&date, Some(b"0000-00-00")), None);
        assert_eq!(value_from_cell(&date, Some(b"2023-02-29")), None);
        let ts = ColumnKind::Timestamp { fsp: 0 };
        assert_eq!(
            value_from_cell(&ts, Some(b"1970-01-01 00:00:01")),
            Some(json!("1970-01-01T00:00:01+00:00"))
        );
        assert_eq!(value_from_cell(&ts, Some(b"2024-01-01 24:00:00")), None);
        assert_eq!(
            value_from_cell(&ColumnKind::Time { fsp: 3 }, Some(b"-838:59:59.000")),
            Some(json!("-838:59:59.000"))
        );
    }

    #[test]
    fn other_cells_keep_the_exact_text_or_base64() {
        let dec = ColumnKind::Decimal {
            precision: 10,
            scale: 2,
        };
        assert_eq!(value_from_cell(&dec, Some(b"-0.50")), Some(json!("-0.50")));
        assert_eq!(
            value_from_cell(&ColumnKind::Text { max_chars: None }, Some("é'".as_bytes())),
            Some(json!("é'"))
        );
        assert_eq!(
            value_from_cell(
                &ColumnKind::Uuid,
                Some(b"123e4567-e89b-12d3-a456-426614174000")
            ),
            Some(json!("123e4567-e89b-12d3-a456-426614174000"))
        );
        assert_eq!(
            value_from_cell(&ColumnKind::Binary, Some(&[0, 255, 0x27])),
            Some(json!("AP8n"))
        );
        assert_eq!(
            value_from_cell(&ColumnKind::Binary, Some(b"")),
            Some(json!(""))
        );
    }

    #[test]
    fn numeric_literals_accept_numbers_only() {
        for kind in [
            int(false),
            ColumnKind::Boolean,
            ColumnKind::Year,
            ColumnKind::Float,
            ColumnKind::Double,
        ] {
            assert_eq!(literal(&kind, &json!(42)).unwrap(), "42", "{kind:?}");
            assert_eq!(literal(&kind, &json!("-42")).unwrap(), "-42");
        }
        assert_eq!(
            literal(&ColumnKind::Double, &json!(1.5e300)).unwrap(),
            "1.5e+300"
        );
        assert_eq!(
            literal(&ColumnKind::Double, &json!("2.5E-3")).unwrap(),
            "2.5E-3"
        );
        assert_eq!(literal(&ColumnKind::Boolean, &json!(true)).unwrap(), "1");
        assert_eq!(literal(&ColumnKind::Boolean, &json!(false)).unwrap(), "0");
        assert_eq!(
            literal(&int(true), &json!(u64::MAX)).unwrap(),
            "18446744073709551615"
        );
        let i = int(false);
        for bad in ["", "-", ".5", "0x10", "1 OR 1=1", "1)", "NaN", "1'"] {
            assert_eq!(
                literal(&i, &json!(bad)),
                Err(format!("'{bad}' is not a number")),
                "{bad:?}"
            );
        }
        assert_eq!(
            literal(&i, &Value::Null),
            Err("unusable bookmark value null".to_string())
        );
        assert_eq!(
            literal(&i, &json!([1])),
            Err("unusable bookmark value [1]".to_string())
        );
        assert_eq!(
            literal(&ColumnKind::Text { max_chars: None }, &json!({"a": 1})),
            Err("unusable bookmark value {\"a\":1}".to_string())
        );
    }

    #[test]
    fn temporal_literals_are_utc_mysql_text() {
        let dt = ColumnKind::DateTime { fsp: 0 };
        for (bookmark, sql) in [
            ("2024-01-02T03:04:05+00:00", "'2024-01-02 03:04:05'"),
            ("2024-01-02T03:04:05Z", "'2024-01-02 03:04:05'"),
            ("2024-01-02T03:04:05.5-00:00", "'2024-01-02 03:04:05.5'"),
            ("2024-01-02 03:04:05", "'2024-01-02 03:04:05'"),
        ] {
            assert_eq!(literal(&dt, &json!(bookmark)).unwrap(), sql, "{bookmark}");
        }
        assert_eq!(
            literal(
                &ColumnKind::Timestamp { fsp: 6 },
                &json!("2024-01-02T03:04:05.000001Z")
            )
            .unwrap(),
            "'2024-01-02 03:04:05.000001'"
        );
        assert_eq!(
            literal(&ColumnKind::Date, &json!("2024-02-29")).unwrap(),
            "'2024-02-29'"
        );
        for bad in [
            "2024-01-02T03:04:05+02:00",
            "2024-01-02T03:04:05-05:00",
            "2024-01-02'; --",
            "tomorrow",
        ] {
            assert_eq!(
                literal(&dt, &json!(bad)),
                Err(format!("'{bad}' is not a UTC date-time"))
            );
        }
        let time = ColumnKind::Time { fsp: 1 };
        assert_eq!(
            literal(&time, &json!("-838:59:59.5")).unwrap(),
            "'-838:59:59.5'"
        );
        assert_eq!(literal(&time, &json!("12:00:00")).unwrap(), "'12:00:00'");
        assert_eq!(
            literal(&time, &json!("12:00' OR '1")),
            Err("'12:00' OR '1' is not a time".to_string())
        );
    }

    #[test]
    fn text_and_binary_literals_are_hex() {
        assert_eq!(
            literal(&ColumnKind::Binary, &json!("AP8n")).unwrap(),
            "X'00FF27'"
        );
        assert_eq!(
            literal(&ColumnKind::Binary, &json!("not base64!")),
            Err("binary key bookmark is not base64".to_string())
        );
        for kind in [
            ColumnKind::Text {
                max_chars: Some(10),
            },
            ColumnKind::Uuid,
            ColumnKind::Enum {
                values: vec!["a".into()],
            },
            ColumnKind::Inet6,
        ] {
            assert_eq!(
                literal(&kind, &json!("a\0\\'")).unwrap(),
                "_utf8mb4 X'61005C27'",
                "{kind:?}"
            );
        }
        assert_eq!(
            literal(&ColumnKind::Text { max_chars: None }, &json!(5)).unwrap(),
            "_utf8mb4 X'35'",
            "a number bookmark on a text key"
        );
    }

    #[test]
    fn every_cell_round_trips_to_a_literal_of_the_same_value() {
        let cases: Vec<(ColumnKind, &[u8], &str)> = vec![
            (int(false), b"-12", "-12"),
            (ColumnKind::Year, b"1901", "1901"),
            (
                ColumnKind::Decimal {
                    precision: 5,
                    scale: 2,
                },
                b"123.45",
                "123.45",
            ),
            (ColumnKind::Double, b"-1.5e-7", "-1.5e-7"),
            (ColumnKind::Date, b"1000-01-01", "'1000-01-01'"),
            (
                ColumnKind::DateTime { fsp: 3 },
                b"9999-12-31 23:59:59.999",
                "'9999-12-31 23:59:59.999'",
            ),
            (ColumnKind::Time { fsp: 0 }, b"-01:02:03", "'-01:02:03'"),
            (ColumnKind::Binary, &[1, 2, 3, 0], "X'01020300'"),
            (
                ColumnKind::Text { max_chars: Some(5) },
                b"ab`c",
                "_utf8mb4 X'61626063'",
            ),
        ];
        for (kind, cell, sql) in cases {
            let v = value_from_cell(&kind, Some(cell)).unwrap();
            assert_eq!(literal(&kind, &v).unwrap(), sql, "{kind:?}");
        }
    }

    #[test]
    fn numbers_are_single_numbers_never_expressions() {
        for ok in ["0", "-12", "3.50", "1e5", "-1.5E-3", "18446744073709551615"] {
            assert!(is_number(ok), "{ok}");
        }
        for bad in [
            "1-2", "1e5e5", "", "-", "1.", ".5", "1e", "1+1", "0x10", " 1",
        ] {
            assert!(!is_number(bad), "{bad}");
        }
    }
}
