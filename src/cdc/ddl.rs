//! Following a table's column order through ALTER TABLE statements in the binlog, for servers
//! that write no column names into it (MariaDB's NO_LOG and MySQL's MINIMAL row metadata, the
//! defaults). The model is the list of column names in order; row events are mapped with it.
//!
//! Understood clauses: ADD [COLUMN] (one or a parenthesised list, with FIRST/AFTER), DROP
//! [COLUMN], CHANGE [COLUMN] old new ..., MODIFY [COLUMN] ..., RENAME COLUMN a TO b, each with
//! optional IF [NOT] EXISTS. Index, key, constraint, partition and table options do not change
//! the column order and are skipped. Anything else about columns makes the model unknown, and
//! the reader then refuses to guess.

/// The outcome of applying a statement.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The statement does not concern this table's columns.
    NotForTable,
    /// The model was updated.
    Updated,
    /// The statement changes the table in a way the model cannot follow.
    Unknown,
}

/// Tokens of a DDL statement: identifiers/keywords (unquoted, case kept), quoted identifiers,
/// punctuation; string literals are skipped.
fn tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' {
            let mut s = String::new();
            i += 1;
            while i < chars.len() {
                if chars[i] == '`' {
                    if chars.get(i + 1) == Some(&'`') {
                        s.push('`');
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                s.push(chars[i]);
                i += 1;
            }
            out.push(format!("`{s}"));
        } else if c == '\'' || c == '"' {
            let q = c;
            i += 1;
            while i < chars.len() && chars[i] != q {
                if chars[i] == '\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push("'".into());
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut s = String::new();
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                s.push(chars[i]);
                i += 1;
            }
            out.push(s);
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            // a comment, or MySQL's /*! ... */ version comment: keep its contents
            i += 2;
            if chars.get(i) == Some(&'!') {
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
            } else {
                while i + 1 < chars.len() && !(chars[i] == '*' && chars[i + 1] == '/') {
                    i += 1;
                }
                i += 2;
            }
        } else if c == '*' && chars.get(i + 1) == Some(&'/') {
            i += 2;
        } else {
            out.push(c.to_string());
            i += 1;
        }
    }
    out
}

fn ident(t: &str) -> String {
    t.strip_prefix('`').unwrap_or(t).to_string()
}

fn kw(t: Option<&String>, k: &str) -> bool {
    t.is_some_and(|t| !t.starts_with('`') && t.eq_ignore_ascii_case(k))
}

/// Splits tokens at top-level commas.
fn clauses(toks: &[String]) -> Vec<&[String]> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, t) in toks.iter().enumerate() {
        match t.as_str() {
            "(" => depth += 1,
            ")" => depth -= 1,
            "," if depth == 0 => {
                out.push(&toks[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&toks[start..]);
    out
}

/// Applies `sql` (run with `default_db` as the current database) to the column model of
/// `db`.`table`.
pub fn apply(
    model: &mut Vec<String>,
    sql: &str,
    default_db: &str,
    db: &str,
    table: &str,
) -> Applied {
    let toks = tokens(sql);
    let mut i = 0;
    if !kw(toks.first(), "ALTER") {
        return Applied::NotForTable;
    }
    i += 1;
    while kw(toks.get(i), "ONLINE") || kw(toks.get(i), "IGNORE") {
        i += 1;
    }
    if !kw(toks.get(i), "TABLE") {
        return Applied::NotForTable;
    }
    i += 1;
    if kw(toks.get(i), "IF") {
        i += 2; // IF EXISTS
    }
    // [db.]table
    let Some(first) = toks.get(i) else {
        return Applied::NotForTable;
    };
    let mut name = ident(first);
    let mut in_db = default_db.to_string();
    i += 1;
    if toks.get(i).map(String::as_str) == Some(".") {
        in_db = name;
        name = toks.get(i + 1).map(|t| ident(t)).unwrap_or_default();
        i += 2;
    }
    if !name.eq_ignore_ascii_case(table) || in_db != db {
        return Applied::NotForTable;
    }
    for clause in clauses(toks.get(i..).unwrap_or(&[])) {
        if clause.is_empty() {
            continue;
        }
        match apply_clause(model, clause) {
            Some(()) => {}
            None => return Applied::Unknown,
        }
    }
    Applied::Updated
}

/// Position after FIRST / AFTER col in `rest`, if any.
fn placement(model: &[String], rest: &[String]) -> Option<Option<usize>> {
    let mut j = 0;
    while j < rest.len() {
        if kw(rest.get(j), "FIRST") {
            return Some(Some(0));
        }
        if kw(rest.get(j), "AFTER") {
            let col = ident(rest.get(j + 1)?);
            let at = model.iter().position(|c| c.eq_ignore_ascii_case(&col))?;
            return Some(Some(at + 1));
        }
        j += 1;
    }
    Some(None)
}

fn skip_if_exists(c: &[String], mut j: usize) -> usize {
    if kw(c.get(j), "IF") {
        j += if kw(c.get(j + 1), "NOT") { 3 } else { 2 };
    }
    j
}

fn apply_clause(model: &mut Vec<String>, c: &[String]) -> Option<()> {
    let word = |j: usize| c.get(j).map(|t| t.to_ascii_uppercase()).unwrap_or_default();
    let is_non_column = |w: &str| {
        matches!(
            w,
            "INDEX"
                | "KEY"
                | "PRIMARY"
                | "UNIQUE"
                | "FULLTEXT"
                | "SPATIAL"
                | "CONSTRAINT"
                | "FOREIGN"
                | "CHECK"
                | "PARTITION"
        )
    };
    match word(0).as_str() {
        "ADD" => {
            let mut j = 1;
            if is_non_column(&word(j)) {
                return Some(());
            }
            if kw(c.get(j), "COLUMN") {
                j += 1;
            }
            j = skip_if_exists(c, j);
            if c.get(j).map(String::as_str) == Some("(") {
                // ADD (col def, col def, ...): appended in order
                let inner = c.get(j + 1..c.len().saturating_sub(1)).unwrap_or(&[]);
                for def in clauses(inner) {
                    let first = def.first()?;
                    if is_non_column(&first.to_ascii_uppercase()) {
                        continue;
                    }
                    let name = ident(first);
                    if !model.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
                        model.push(name);
                    }
                }
                return Some(());
            }
            let name = ident(c.get(j)?);
            if model.iter().any(|m| m.eq_ignore_ascii_case(&name)) {
                return Some(()); // IF NOT EXISTS on an existing column
            }
            match placement(model, &c[j + 1..])? {
                Some(at) => model.insert(at, name),
                None => model.push(name),
            }
            Some(())
        }
        "DROP" => {
            let mut j = 1;
            if is_non_column(&word(j)) {
                return Some(());
            }
            if kw(c.get(j), "COLUMN") {
                j += 1;
            }
            j = skip_if_exists(c, j);
            let name = ident(c.get(j)?);
            model.retain(|m| !m.eq_ignore_ascii_case(&name));
            Some(())
        }
        "CHANGE" | "MODIFY" => {
            let mut j = 1;
            if kw(c.get(j), "COLUMN") {
                j += 1;
            }
            j = skip_if_exists(c, j);
            let old = ident(c.get(j)?);
            let (new, rest) = if word(0) == "CHANGE" {
                (ident(c.get(j + 1)?), &c[j + 2..])
            } else {
                (old.clone(), &c[j + 1..])
            };
            let at = model.iter().position(|m| m.eq_ignore_ascii_case(&old))?;
            model.remove(at);
            match placement(model, rest)? {
                Some(p) => model.insert(p, new),
                None => model.insert(at, new),
            }
            Some(())
        }
        "RENAME" => {
            if kw(c.get(1), "COLUMN") {
                let old = ident(c.get(2)?);
                let new = ident(c.get(4)?);
                let at = model.iter().position(|m| m.eq_ignore_ascii_case(&old))?;
                model[at] = new;
                Some(())
            } else if is_non_column(&word(1)) {
                Some(())
            } else {
                None // RENAME TO another table name: the model is no longer this table's
            }
        }
        "ALGORITHM" | "LOCK" | "ENGINE" | "COMMENT" | "AUTO_INCREMENT" | "ROW_FORMAT"
        | "CHARACTER" | "DEFAULT" | "CHARSET" | "COLLATE" | "FORCE" | "ALTER" | "ORDER"
        | "ENABLE" | "DISABLE" | "KEY_BLOCK_SIZE" | "STATS_PERSISTENT" | "WAIT" | "NOWAIT" => {
            // ALTER [COLUMN] c SET/DROP DEFAULT and table options keep the column order.
            Some(())
        }
        "CONVERT" => Some(()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(cols: &[&str]) -> Vec<String> {
        cols.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn column_changes() {
        let mut model = m(&["id", "a", "b"]);
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t ADD COLUMN c decimal(5,2) AFTER a",
                "db",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model, m(&["id", "a", "c", "b"]));
        assert_eq!(
            apply(
                &mut model,
                "alter table `db`.`t` drop column b, add `x y` int first",
                "other",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model, m(&["x y", "id", "a", "c"]));
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t MODIFY a varchar(20) DEFAULT 'a,b' AFTER c",
                "db",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model, m(&["x y", "id", "c", "a"]));
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t CHANGE COLUMN c cc int, RENAME COLUMN a TO aa",
                "db",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model, m(&["x y", "id", "cc", "aa"]));
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t ADD (p int, q enum('x','y')), ADD INDEX (p)",
                "db",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model, m(&["x y", "id", "cc", "aa", "p", "q"]));
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t ADD COLUMN IF NOT EXISTS p int, DROP COLUMN IF EXISTS zz",
                "db",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model.len(), 6);
    }

    #[test]
    fn other_statements() {
        let mut model = m(&["id"]);
        assert_eq!(
            apply(&mut model, "ALTER TABLE other ADD c int", "db", "db", "t"),
            Applied::NotForTable
        );
        assert_eq!(
            apply(&mut model, "ALTER TABLE t ADD c int", "db2", "db", "t"),
            Applied::NotForTable
        );
        assert_eq!(
            apply(&mut model, "ALTER TABLE db2.t ADD c int", "db", "db", "t"),
            Applied::NotForTable
        );
        assert_eq!(
            apply(&mut model, "CREATE TABLE t (id int)", "db", "db", "t"),
            Applied::NotForTable
        );
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t ADD INDEX i (id), ENGINE=InnoDB, ALGORITHM=INPLACE",
                "db",
                "db",
                "t"
            ),
            Applied::Updated
        );
        assert_eq!(model, m(&["id"]));
        assert_eq!(
            apply(&mut model, "ALTER TABLE t RENAME TO t2", "db", "db", "t"),
            Applied::Unknown
        );
        assert_eq!(
            apply(
                &mut model,
                "ALTER TABLE t EXCHANGE PARTITION p WITH TABLE x",
                "db",
                "db",
                "t"
            ),
            Applied::Unknown
        );
        assert_eq!(
            apply(&mut model, "ALTER TABLE t MODIFY nope int", "db", "db", "t"),
            Applied::Unknown
        );
    }
}
