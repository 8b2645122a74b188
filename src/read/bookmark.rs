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

/// The SQL literal for a bookmark value of a column of `kind`.
pub(crate) fn literal(kind: &ColumnKind, v: &Value) -> Result<String, String> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => (if *b { "1" } else { "0" }).to_string(),
        other => return Err(format!("unusable bookmark value {other}")),
    };
    let numeric = |t: &str| {
        let body = t.strip_prefix('-').unwrap_or(t);
        !body.is_empty()
            && body.as_bytes()[0].is_ascii_digit()
            && body
                .bytes()
                .all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'E' | b'+' | b'-'))
    };
    match kind {
        ColumnKind::Integer { .. }
        | ColumnKind::Boolean
        | ColumnKind::Year
        | ColumnKind::Decimal { .. }
        | ColumnKind::Float
        | ColumnKind::Double => {
            if numeric(&text) {
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
}
