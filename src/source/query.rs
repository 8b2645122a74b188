//! SQL text building. Identifiers are always quoted here; values are always bound as
//! parameters or rendered as escaped literals by these helpers, never pasted raw.

/// Quotes an identifier with backticks, doubling any backtick inside it.
pub(crate) fn quote_ident(name: &str) -> String {
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
pub(crate) fn qualified(db: &str, table: &str) -> String {
    format!("{}.{}", quote_ident(db), quote_ident(table))
}

/// A string literal with every special character escaped (works whether or not
/// `NO_BACKSLASH_ESCAPES` is set, because backslashes are avoided: quotes are doubled and
/// other bytes go through `CONCAT`-free hex when needed).
pub(crate) fn quote_str(value: &str) -> String {
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

/// Hex of bytes, upper case.
fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02X}"));
    }
    s
}

/// A text literal that takes the column's collation in comparisons (coercible introducer form).
pub(crate) fn text_literal(value: &str) -> String {
    format!("_utf8mb4 X'{}'", hex(value.as_bytes()))
}

/// A binary literal.
pub(crate) fn binary_literal(bytes: &[u8]) -> String {
    format!("X'{}'", hex(bytes))
}

/// `(a, b) > (x, y)` written so that MariaDB and MySQL both use a range scan on the key:
/// `a >= x AND (a > x OR (a = x AND b > y))`. `op` is the last comparison (`>`, `>=`, `<=`).
pub(crate) fn tuple_compare(columns: &[String], literals: &[String], op: &str) -> String {
    debug_assert_eq!(columns.len(), literals.len());
    let first_op = match op {
        ">" | ">=" => ">=",
        _ => "<=",
    };
    let strict = match op {
        ">" | ">=" => ">",
        _ => "<",
    };
    fn nest(columns: &[String], literals: &[String], strict: &str, last: &str) -> String {
        if columns.len() == 1 {
            return format!("{} {last} {}", columns[0], literals[0]);
        }
        format!(
            "{c} {strict} {l} OR ({c} = {l} AND ({rest}))",
            c = columns[0],
            l = literals[0],
            rest = nest(&columns[1..], &literals[1..], strict, last)
        )
    }
    if columns.len() == 1 {
        return format!("{} {op} {}", columns[0], literals[0]);
    }
    format!(
        "{} {first_op} {} AND ({})",
        columns[0],
        literals[0],
        nest(columns, literals, strict, op)
    )
}

#[cfg(test)]
mod literal_tests {
    use super::*;

    #[test]
    fn tuples() {
        let c = vec!["`a`".to_string(), "`b`".to_string()];
        let l = vec!["1".to_string(), "'x'".to_string()];
        assert_eq!(
            tuple_compare(&c, &l, ">"),
            "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND (`b` > 'x')))"
        );
        assert_eq!(
            tuple_compare(&c, &l, "<="),
            "`a` <= 1 AND (`a` < 1 OR (`a` = 1 AND (`b` <= 'x')))"
        );
        assert_eq!(tuple_compare(&c[..1], &l[..1], ">="), "`a` >= 1");
        assert_eq!(text_literal("a'"), "_utf8mb4 X'6127'");
    }
}
