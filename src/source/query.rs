//! SQL text building. Identifiers are always quoted here; values are always bound as
//! parameters or rendered as escaped literals by these helpers, never pasted raw.

/// Quotes an identifier with backticks, doubling any backtick inside it.
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('`');
    for c in name.chars() {
        if c == '`' {
            out.push('`');
        }
        out.push(c);
    }
    out.push('`');
    out
}

/// `db`.`table`, both quoted.
pub fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(table))
}

/// A string literal with every special character escaped (works whether or not
/// `NO_BACKSLASH_ESCAPES` is set, because backslashes are avoided: quotes are doubled and
/// other bytes go through `CONCAT`-free hex when needed).
pub fn quote_str(value: &str) -> String {
    if value
        .bytes()
        .all(|b| b != b'\\' && b != 0 && b != b'\'' && b != 0x1a)
    {
        return format!("'{value}'");
    }
    // Hex literal, converted to the connection charset: exact for any content.
    let mut hex = String::with_capacity(value.len() * 2 + 16);
    hex.push_str("CONVERT(X'");
    for b in value.bytes() {
        hex.push_str(&format!("{b:02X}"));
    }
    hex.push_str("' USING utf8mb4)");
    hex
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("a"), "`a`");
        assert_eq!(quote_ident("we`ird"), "`we``ird`");
        assert_eq!(qualified("d b", "t"), "`d b`.`t`");
        assert_eq!(quote_str("abc"), "'abc'");
        assert_eq!(quote_str("a'b"), "CONVERT(X'612762' USING utf8mb4)");
    }
}
