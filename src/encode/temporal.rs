//! Dates and times as MySQL prints them (text protocol) into RFC 3339.

/// Days in a month of a year (proleptic Gregorian).
fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        _ => 0,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() || !b.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(b.iter().fold(0u32, |acc, d| acc * 10 + (d - b'0') as u32))
}

/// True when `YYYY-MM-DD` is a real calendar date (year 1..9999). Zero dates
/// (`0000-00-00`), zero parts (`2024-00-10`) and impossible days (`2024-02-30`) are not.
pub(crate) fn valid_date(b: &[u8]) -> bool {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let (Some(y), Some(m), Some(d)) = (digits(&b[0..4]), digits(&b[5..7]), digits(&b[8..10]))
    else {
        return false;
    };
    y >= 1 && (1..=12).contains(&m) && d >= 1 && d <= days_in_month(y, m)
}

/// True when `YYYY-MM-DD HH:MM:SS[.f]` is a real date-time (not zero, not invalid).
pub(crate) fn valid_datetime(b: &[u8]) -> bool {
    if b.len() < 19 || b[10] != b' ' || b[13] != b':' || b[16] != b':' || !valid_date(&b[..10]) {
        return false;
    }
    let (Some(h), Some(mi), Some(s)) = (digits(&b[11..13]), digits(&b[14..16]), digits(&b[17..19]))
    else {
        return false;
    };
    if h > 23 || mi > 59 || s > 59 {
        return false;
    }
    let frac = &b[19..];
    if !frac.is_empty() && (frac[0] != b'.' || digits(&frac[1..]).is_none()) {
        return false;
    }
    true
}

/// Appends a quoted RFC 3339 date-time for `YYYY-MM-DD HH:MM:SS[.ffffff]` read as UTC.
/// Returns false (and appends nothing) when the value is a zero or invalid date-time.
pub(crate) fn write_datetime(out: &mut Vec<u8>, b: &[u8]) -> bool {
    if !valid_datetime(b) {
        return false;
    }
    out.push(b'"');
    out.extend_from_slice(&b[..10]);
    out.push(b'T');
    out.extend_from_slice(&b[11..]);
    out.extend_from_slice(b"+00:00\"");
    true
}

/// Turns an RFC 3339 bookmark (`2024-01-02T03:04:05.123+00:00`, `...Z`) or a MySQL literal back
/// into MySQL's `YYYY-MM-DD HH:MM:SS[.f]`, for comparisons in SQL. Only UTC offsets are accepted.
pub(crate) fn rfc3339_to_mysql(s: &str) -> Option<String> {
    let t = s.trim();
    if !t.is_ascii() {
        return None; // and byte offsets below stay on character boundaries
    }
    let body = t
        .strip_suffix("+00:00")
        .or_else(|| t.strip_suffix('Z'))
        .or_else(|| t.strip_suffix("-00:00"))
        .or_else(|| t.strip_suffix("+0000"))
        .unwrap_or(t);
    if body.contains('+') || body[10.min(body.len())..].contains('-') {
        return None; // a non-UTC offset
    }
    let out = body.replacen('T', " ", 1);
    if out
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b' ' | b':' | b'.'))
    {
        Some(out)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dt(s: &str) -> Option<String> {
        let mut v = Vec::new();
        write_datetime(&mut v, s.as_bytes()).then(|| String::from_utf8(v).unwrap())
    }

    #[test]
    fn dates() {
        assert!(valid_date(b"2024-02-29"));
        assert!(valid_date(b"1000-01-01"));
        assert!(valid_date(b"9999-12-31"));
        assert!(!valid_date(b"2023-02-29"));
        assert!(!valid_date(b"0000-00-00"));
        assert!(!valid_date(b"2024-00-10"));
        assert!(!valid_date(b"2024-01-00"));
        assert!(!valid_date(b"0000-01-01"));
    }

    #[test]
    fn datetimes() {
        assert_eq!(
            dt("2024-01-02 03:04:05").unwrap(),
            "\"2024-01-02T03:04:05+00:00\""
        );
        assert_eq!(
            dt("9999-12-31 23:59:59.999999").unwrap(),
            "\"9999-12-31T23:59:59.999999+00:00\""
        );
        assert_eq!(dt("0000-00-00 00:00:00"), None);
        assert_eq!(dt("2024-00-10 00:00:00"), None);
    }

    #[test]
    fn bookmarks_back_to_mysql() {
        assert_eq!(
            rfc3339_to_mysql("2024-01-02T03:04:05.5+00:00").as_deref(),
            Some("2024-01-02 03:04:05.5")
        );
        assert_eq!(
            rfc3339_to_mysql("2024-01-02T03:04:05Z").as_deref(),
            Some("2024-01-02 03:04:05")
        );
        assert_eq!(
            rfc3339_to_mysql("2024-01-02").as_deref(),
            Some("2024-01-02")
        );
        assert_eq!(rfc3339_to_mysql("2024-01-02T03:04:05+02:00"), None);
        assert_eq!(rfc3339_to_mysql("x'; DROP"), None);
        assert_eq!(
            rfc3339_to_mysql("2024-01-0é 00:00:00"),
            None,
            "no panic on non-ASCII state"
        );
    }
}
