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

    #[test]
    fn identifiers_double_every_backquote() {
        assert_eq!(quote_ident(""), "``");
        assert_eq!(quote_ident("`"), "````");
        assert_eq!(quote_ident("``x`"), "`````x```");
        assert_eq!(quote_ident("prénom"), "`prénom`");
        assert_eq!(quote_ident("a.b"), "`a.b`", "a dot is part of the name");
        assert_eq!(quote_ident("x'y\"z\\"), "`x'y\"z\\`");
        assert_eq!(qualified("d`b", "t`"), "`d``b`.`t```");
        assert_eq!(qualified("shop", "order items"), "`shop`.`order items`");
    }

    #[test]
    fn string_literals_never_hold_a_raw_special_byte() {
        assert_eq!(quote_str(""), "''");
        assert_eq!(quote_str("é \"x\" %_\n"), "'é \"x\" %_\n'");
        let hex = |s: &str| format!("CONVERT(X'{s}' USING utf8mb4)");
        assert_eq!(quote_str("a\\b"), hex("615C62"));
        assert_eq!(quote_str("a\0b"), hex("610062"));
        assert_eq!(quote_str("\u{1a}"), hex("1A"));
        assert_eq!(quote_str("'"), hex("27"));
        assert_eq!(quote_str("é'"), hex("C3A927"), "UTF-8 bytes");
        assert_eq!(
            quote_str("'; DROP TABLE t; --"),
            hex("273B2044524F50205441424C4520743B202D2D")
        );
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

    #[test]
    fn literals_are_hex_for_any_content() {
        assert_eq!(text_literal(""), "_utf8mb4 X''");
        assert_eq!(text_literal("é\0\\'`"), "_utf8mb4 X'C3A9005C2760'");
        assert_eq!(text_literal("\u{1F600}"), "_utf8mb4 X'F09F9880'");
        assert_eq!(binary_literal(&[]), "X''");
        assert_eq!(
            binary_literal(&[0, 0x27, 0x5c, 0x0a, 0xff]),
            "X'00275C0AFF'"
        );
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn composite_keys_nest_one_level_per_column() {
        let c = names(&["`a`", "`b`", "`c`"]);
        let l = names(&["1", "2", "3"]);
        assert_eq!(
            tuple_compare(&c, &l, ">"),
            "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND (`b` > 2 OR (`b` = 2 AND (`c` > 3)))))"
        );
        assert_eq!(
            tuple_compare(&c, &l, ">="),
            "`a` >= 1 AND (`a` > 1 OR (`a` = 1 AND (`b` > 2 OR (`b` = 2 AND (`c` >= 3)))))"
        );
        assert_eq!(
            tuple_compare(&c, &l, "<"),
            "`a` <= 1 AND (`a` < 1 OR (`a` = 1 AND (`b` < 2 OR (`b` = 2 AND (`c` < 3)))))"
        );
        assert_eq!(tuple_compare(&c[..1], &l[..1], "<"), "`a` < 1");
        // Quoted names and literals are used as given.
        let c = vec![quote_ident("we`ird"), quote_ident("k")];
        let l = vec![text_literal("x'"), binary_literal(&[0])];
        assert_eq!(
            tuple_compare(&c, &l, "<="),
            "`we``ird` <= _utf8mb4 X'7827' AND (`we``ird` < _utf8mb4 X'7827' OR (`we``ird` = _utf8mb4 X'7827' AND (`k` <= X'00')))"
        );
    }

    /// Evaluates the `col op lit`, `AND`, `OR`, `( )` SQL that `tuple_compare` writes, with
    /// single-letter columns bound to `row` and integer literals.
    fn eval(sql: &str, row: &[i64]) -> bool {
        let spaced = sql.replace('(', " ( ").replace(')', " ) ");
        let tokens: Vec<&str> = spaced.split_whitespace().collect();
        let mut at = 0;
        let v = or(&tokens, &mut at, row);
        assert_eq!(at, tokens.len(), "unparsed tail in {sql}");
        v
    }

    fn or(t: &[&str], at: &mut usize, row: &[i64]) -> bool {
        let mut v = and(t, at, row);
        while t.get(*at) == Some(&"OR") {
            *at += 1;
            v |= and(t, at, row);
        }
        v
    }

    fn and(t: &[&str], at: &mut usize, row: &[i64]) -> bool {
        let mut v = atom(t, at, row);
        while t.get(*at) == Some(&"AND") {
            *at += 1;
            v &= atom(t, at, row);
        }
        v
    }

    fn atom(t: &[&str], at: &mut usize, row: &[i64]) -> bool {
        if t[*at] == "(" {
            *at += 1;
            let v = or(t, at, row);
            assert_eq!(t[*at], ")");
            *at += 1;
            return v;
        }
        let column = row[(t[*at].as_bytes()[0] - b'a') as usize];
        let literal: i64 = t[*at + 2].parse().unwrap();
        let v = match t[*at + 1] {
            ">" => column > literal,
            ">=" => column >= literal,
            "<" => column < literal,
            "<=" => column <= literal,
            "=" => column == literal,
            op => panic!("operator {op}"),
        };
        *at += 3;
        v
    }

    #[test]
    fn tuple_compare_is_the_row_comparison() {
        use std::cmp::Ordering::{Equal, Greater, Less};
        let c = names(&["a", "b", "c"]);
        let values = [0i64, 1, 2];
        let mut tuples: Vec<Vec<i64>> = Vec::new();
        for x in values {
            for y in values {
                for z in values {
                    tuples.push(vec![x, y, z]);
                }
            }
        }
        for (op, wanted) in [
            (">", &[Greater][..]),
            (">=", &[Greater, Equal][..]),
            ("<", &[Less][..]),
            ("<=", &[Less, Equal][..]),
        ] {
            for n in 1..=3 {
                for bound in &tuples {
                    let l: Vec<String> = bound[..n].iter().map(i64::to_string).collect();
                    let sql = tuple_compare(&c[..n], &l, op);
                    for row in &tuples {
                        assert_eq!(
                            eval(&sql, &row[..n]),
                            wanted.contains(&row[..n].cmp(&bound[..n])),
                            "{:?} {op} {:?}: {sql}",
                            &row[..n],
                            &bound[..n]
                        );
                    }
                }
            }
        }
    }
}
