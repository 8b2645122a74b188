//! Hand-written JSON output for the hot path: string escaping into a reusable buffer.
//!
//! Only what RECORD encoding needs. serde_json is used for catalogs, state and config.

/// For each byte: 0 = copy as is, otherwise the escape class.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 0x20 {
        t[i] = b'u';
        i += 1;
    }
    t[b'"' as usize] = b'"';
    t[b'\\' as usize] = b'\\';
    t[b'\n' as usize] = b'n';
    t[b'\r' as usize] = b'r';
    t[b'\t' as usize] = b't';
    t[0x08] = b'b';
    t[0x0c] = b'f';
    t
};

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `s` as a quoted JSON string.
#[inline]
pub(crate) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_escaped_bytes(out, s.as_bytes());
}

/// Appends already-valid UTF-8 bytes as a quoted JSON string.
#[inline]
pub(crate) fn write_escaped_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    // Valid UTF-8 cannot fail the check.
    let _ = write_checked(out, bytes, true);
}

/// Appends bytes as a quoted JSON string if they are valid UTF-8 and returns true; returns
/// false (with `out` holding a partial string the caller truncates) otherwise.
///
/// Eight bytes at a time are skipped while none is a quote, a backslash, a control character
/// or (until the rest is found valid) a non-ASCII byte: a cell of plain text is one check per
/// word and one copy.
#[inline]
pub(crate) fn write_checked(out: &mut Vec<u8>, bytes: &[u8], mut valid: bool) -> bool {
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(word) = bytes
            .get(i..i + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            if !attention(u64::from_le_bytes(word), valid) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        if b >= 0x80 && !valid {
            // Everything before is ASCII: the text is valid exactly when the rest is.
            if std::str::from_utf8(&bytes[i..]).is_err() {
                return false;
            }
            valid = true;
        }
        let class = ESCAPE[b as usize];
        if class != 0 {
            out.extend_from_slice(&bytes[start..i]);
            match class {
                b'u' => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[(b >> 4) as usize],
                    HEX[(b & 0xf) as usize],
                ]),
                c => out.extend_from_slice(&[b'\\', c]),
            }
            start = i + 1;
        }
        i += 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
    true
}

/// Whether a word of eight bytes holds a byte below 0x20, a quote or a backslash, or (when
/// `valid` is false) a byte of 0x80 or more. Exact: the borrow tricks can only misreport
/// bytes above one that truly matches.
#[inline]
fn attention(x: u64, valid: bool) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let quote = zero_byte(x ^ (ONES * b'"' as u64));
    let backslash = zero_byte(x ^ (ONES * b'\\' as u64));
    let high = if valid { 0 } else { x & HIGH };
    (control | quote | backslash | high) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn esc(s: &str) -> String {
        let mut v = Vec::new();
        write_str(&mut v, s);
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn escapes_like_serde() {
        for s in [
            "",
            "plain",
            "quote\" back\\slash",
            "tab\tnl\ncr\r",
            "\u{0}\u{1}\u{1f}\u{7f}",
            "😀 𝄞 ünï",
            "\u{8}\u{c}",
        ] {
            let ours = esc(s);
            let back: String = serde_json::from_str(&ours).unwrap();
            assert_eq!(back, s);
        }
        assert_eq!(esc("a\"b"), r#""a\"b""#);
        // Words of eight: a quote, a backslash or a control byte at every position.
        for pos in 0..20 {
            for special in ['"', '\\', '\n', '\u{1}', 'é', '\u{7f}'] {
                let mut t: String = "abcdefghijklmnopqrst".into();
                t.insert(pos, special);
                let ours = esc(&t);
                let back: String = serde_json::from_str(&ours).unwrap();
                assert_eq!(back, t);
                let mut checked = Vec::new();
                assert!(write_checked(&mut checked, t.as_bytes(), false));
                assert_eq!(String::from_utf8(checked).unwrap(), ours);
            }
        }
        let mut v = Vec::new();
        assert!(!write_checked(&mut v, b"abcdefghij\xffklmnop", false));
        assert!(!write_checked(&mut v, b"abcdefghij\xc3", false));
        assert_eq!(esc("\u{1}"), r#""\u0001""#);
    }
}
