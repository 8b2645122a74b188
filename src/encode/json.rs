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
            let marks = attention(u64::from_le_bytes(word), valid);
            if marks == 0 {
                i += 8;
                continue;
            }
            // The lowest mark is a byte that truly needs attention: go straight to it.
            i += (marks.trailing_zeros() / 8) as usize;
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

/// The high bit of each byte of a word of eight (read little-endian) that is below 0x20, a
/// quote or a backslash, or (when `valid` is false) 0x80 or more; 0 when none is. The lowest
/// mark is always exact: the borrow tricks can only misreport bytes above one that truly
/// matches.
#[inline]
fn attention(x: u64, valid: bool) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_byte = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    let quote = zero_byte(x ^ (ONES * b'"' as u64));
    let backslash = zero_byte(x ^ (ONES * b'\\' as u64));
    let high = if valid { 0 } else { x & HIGH };
    control | quote | backslash | high
}

/// Whether `b` is one JSON document (RFC 8259; surrounding whitespace allowed) in valid UTF-8.
///
/// The same verdict as `serde_json::from_slice::<IgnoredAny>` (the differential test below
/// checks it) for valid UTF-8, which that never checks inside strings: here text that is not
/// UTF-8 is never JSON. A hand-written loop because this runs for every JSON cell and took
/// serde's deserializer machinery about 7% of the RECORD path's CPU. Containers nest 128 deep
/// here; deeper documents are handed to serde_json.
pub(crate) fn is_valid(b: &[u8]) -> bool {
    if !b.is_ascii() && std::str::from_utf8(b).is_err() {
        return false;
    }
    let mut p = Scan { b, i: 0 };
    // Open containers, innermost in bit 0: 1 for an object, 0 for an array.
    let mut open: u128 = 0;
    let mut depth = 0u32;
    loop {
        // A value.
        p.ws();
        match p.peek() {
            Some(c @ (b'{' | b'[')) => {
                if depth == 128 {
                    return serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok();
                }
                p.i += 1;
                open = (open << 1) | u128::from(c == b'{');
                depth += 1;
                p.ws();
                let close = if c == b'{' { b'}' } else { b']' };
                if p.peek() != Some(close) {
                    if c == b'{' && !p.key() {
                        return false;
                    }
                    continue;
                }
                // An empty container is a whole value: close it below.
            }
            Some(b'"') => {
                p.i += 1;
                if !p.string() {
                    return false;
                }
            }
            Some(b'-' | b'0'..=b'9') => {
                if !p.number() {
                    return false;
                }
            }
            Some(b't') if p.literal(b"true") => {}
            Some(b'f') if p.literal(b"false") => {}
            Some(b'n') if p.literal(b"null") => {}
            _ => return false,
        }
        // After a value: close containers, or go on after a comma.
        loop {
            if depth == 0 {
                p.ws();
                return p.i == b.len();
            }
            let object = open & 1 == 1;
            // An empty container's closing byte is next; otherwise skip to it.
            p.ws();
            match p.peek() {
                Some(b'}') if object => {}
                Some(b']') if !object => {}
                Some(b',') => {
                    p.i += 1;
                    if object && !p.key() {
                        return false;
                    }
                    break;
                }
                _ => return false,
            }
            p.i += 1;
            open >>= 1;
            depth -= 1;
        }
    }
}

/// A position in a JSON text.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    #[inline]
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    #[inline]
    fn ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\t' | b'\r') = self.peek() {
            self.i += 1;
        }
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let ok = self.b.get(self.i..self.i + word.len()) == Some(word);
        self.i += word.len();
        ok
    }

    /// An object's key and its colon (whitespace before the key already skipped or not).
    fn key(&mut self) -> bool {
        self.ws();
        if self.peek() != Some(b'"') {
            return false;
        }
        self.i += 1;
        if !self.string() {
            return false;
        }
        self.ws();
        if self.peek() != Some(b':') {
            return false;
        }
        self.i += 1;
        true
    }

    /// The rest of a string after its opening quote.
    fn string(&mut self) -> bool {
        loop {
            let Some(c) = self.peek() else { return false };
            self.i += 1;
            match c {
                b'"' => return true,
                b'\\' => {
                    let Some(e) = self.peek() else { return false };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            let hex = self.b.get(self.i..self.i + 4);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return false;
                            }
                            self.i += 4;
                        }
                        _ => return false,
                    }
                }
                0..=0x1f => return false,
                _ => {}
            }
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    fn number(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return false,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return false;
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return false;
            }
            self.digits();
        }
        // A digit right after a leading zero is "01": not a number.
        !self.peek().is_some_and(|c| c.is_ascii_digit())
    }

    #[inline]
    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }
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

    fn serde_says(b: &[u8]) -> bool {
        serde_json::from_slice::<serde::de::IgnoredAny>(b).is_ok()
    }

    #[test]
    fn valid_json_as_serde_json_says() {
        let cases: &[&str] = &[
            "",
            " ",
            "null",
            " null ",
            "nul",
            "nulll",
            "true",
            "false",
            "tru",
            "1",
            "-1",
            "-",
            "01",
            "-01",
            "0",
            "-0",
            "0.",
            "0.5",
            ".5",
            "1e5",
            "1E+5",
            "1e-5",
            "1e",
            "1e+",
            "1.5e3",
            "1.e3",
            "12345678901234567890.123",
            "1 2",
            "\"\"",
            "\"a\"",
            "\"a",
            "\"\\u00e9\"",
            "\"\\u00g9\"",
            "\"\\ud800\"",
            "\"\\x\"",
            "\"\\/\"",
            "\"tab\there\"",
            "\"é ü 😀\"",
            "[]",
            "[ ]",
            "[1]",
            "[1,]",
            "[,1]",
            "[1 2]",
            "[[[]]]",
            "[[[]]",
            "{}",
            "{ }",
            "{\"a\":1}",
            "{\"a\" : [1, {\"b\": null}]}",
            "{\"a\":1,}",
            "{\"a\"}",
            "{a:1}",
            "{\"a\":1 \"b\":2}",
            "{\"a\":1}}",
            "[1]]",
            "{\"k\": 2, \"tags\": [\"a\", \"b\"]}",
            "\n{\"a\":\n[1, 2]}\r\n",
            "[1]x",
            "[true,false,null]",
            "[-]",
            "[1.]",
            "{\"\":\"\"}",
            "[\"\\\"\"]",
        ];
        for c in cases {
            assert_eq!(is_valid(c.as_bytes()), serde_says(c.as_bytes()), "{c:?}");
        }
        // Deep nesting: serde_json ignores any depth; beyond 128 the check is handed to it.
        for depth in [127, 128, 129, 300] {
            let doc = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert!(is_valid(doc.as_bytes()), "{depth}");
            let bad = format!("{}{}", "[".repeat(depth), "]".repeat(depth - 1));
            assert!(!is_valid(bad.as_bytes()), "{depth}");
        }
        // Not UTF-8: never JSON here.
        assert!(!is_valid(b"\"\xff\""));
        assert!(!is_valid(b"[\"\xc3\"]"));
    }

    /// Random documents and their mutations: the same verdict as serde_json.
    #[test]
    fn valid_json_matches_serde_json_on_random_texts() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let atoms = [
            "0",
            "-12",
            "3.25",
            "1e9",
            "-0.5E-3",
            "true",
            "false",
            "null",
            "\"s\"",
            "\"e\\n\\u0041\"",
            "[]",
            "{}",
            "\"é\"",
        ];
        let tokens = [
            "[", "]", "{", "}", ",", ":", " ", "\"k\"", "1", "-", ".", "e", "0", "\"", "\\",
        ];
        let mut agreed = (0, 0);
        for _ in 0..20_000 {
            let mut doc = String::new();
            build(&mut doc, &mut next, &atoms, 0);
            // Mutate one time in two: insert, delete or replace a token.
            if next() % 2 == 0 && !doc.is_empty() {
                let at = (next() as usize) % doc.len();
                let at = (0..=at)
                    .rev()
                    .find(|&k| doc.is_char_boundary(k))
                    .unwrap_or(0);
                let t = tokens[(next() as usize) % tokens.len()];
                match next() % 3 {
                    0 => doc.insert_str(at, t),
                    1 => {
                        doc.remove(at);
                    }
                    _ => {
                        doc.remove(at);
                        doc.insert_str(at, t);
                    }
                }
            }
            let ours = is_valid(doc.as_bytes());
            assert_eq!(ours, serde_says(doc.as_bytes()), "{doc:?}");
            if ours {
                agreed.0 += 1;
            } else {
                agreed.1 += 1;
            }
        }
        // Both verdicts were exercised, many times.
        assert!(agreed.0 > 5_000 && agreed.1 > 5_000, "{agreed:?}");
    }

    fn build(doc: &mut String, next: &mut impl FnMut() -> u64, atoms: &[&str], depth: u32) {
        match next() % if depth > 4 { 1 } else { 3 } {
            0 => doc.push_str(atoms[(next() as usize) % atoms.len()]),
            1 => {
                doc.push('[');
                for k in 0..next() % 4 {
                    if k > 0 {
                        doc.push_str(", ");
                    }
                    build(doc, next, atoms, depth + 1);
                }
                doc.push(']');
            }
            _ => {
                doc.push('{');
                for k in 0..next() % 4 {
                    if k > 0 {
                        doc.push(',');
                    }
                    doc.push_str(&format!("\"k{k}\": "));
                    build(doc, next, atoms, depth + 1);
                }
                doc.push('}');
            }
        }
    }
}
