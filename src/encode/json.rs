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
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let class = ESCAPE[b as usize];
        if class == 0 {
            continue;
        }
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
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
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
        assert_eq!(esc("\u{1}"), r#""\u0001""#);
    }
}
