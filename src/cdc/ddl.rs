//! What a DDL statement in the binlog does to which tables, worked out from the statement
//! itself (never by substring), and how a table's column order follows ALTER TABLE.
//!
//! `changes` names every table a statement changes, resolved against the event's default
//! database: backquoted and qualified names, comments before and inside the statement (MySQL's
//! `/*! ... */` and MariaDB's `/*M! ... */` executable comments are read as statement text),
//! `RENAME TABLE a TO b, c TO a` (pairs applied in order), `ALTER TABLE … RENAME TO`,
//! `CREATE TABLE x LIKE y` and `CREATE TABLE x … SELECT … FROM y` (only x changes),
//! `DROP TABLE IF EXISTS a, b`, `DROP DATABASE`, `TRUNCATE`. Temporary tables never change a
//! real table. A statement that names no table (or only other tables) changes nothing.
//!
//! `apply` follows a table's column order through ALTER TABLE clauses, for servers that write
//! no column names into the binlog (MariaDB's NO_LOG and MySQL's MINIMAL row metadata, the
//! defaults). Understood clauses: ADD [COLUMN] (one or a parenthesised list, with
//! FIRST/AFTER), DROP [COLUMN], CHANGE [COLUMN] old new ..., MODIFY [COLUMN] ..., RENAME COLUMN
//! a TO b, each with optional IF [NOT] EXISTS. Index, key, constraint, partitioning and table
//! options do not change the column order and are skipped. Anything else about columns makes
//! the model unknown, and the reader then refuses to guess.

/// The outcome of applying ALTER TABLE clauses to a column order.
#[derive(Debug, PartialEq, Eq)]
pub enum Applied {
    /// The model was updated (or the clauses keep the column order).
    Updated,
    /// A clause changes the columns in a way the model cannot follow.
    Unknown,
}

/// What a statement changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// One table.
    Table {
        /// Its database (the event's default database when the statement does not name one).
        db: String,
        /// Its name as written.
        table: String,
    },
    /// Every table of a database (`DROP DATABASE`).
    Database(String),
}

impl Target {
    /// Whether this is `db`.`table` (names compared exactly, or ignoring case when the server
    /// folds table names: `lower_case_table_names` > 0).
    pub fn is(&self, db: &str, table: &str, fold_case: bool) -> bool {
        let same = |a: &str, b: &str| {
            if fold_case {
                a.eq_ignore_ascii_case(b) || a.to_lowercase() == b.to_lowercase()
            } else {
                a == b
            }
        };
        match self {
            Target::Table { db: d, table: t } => same(d, db) && same(t, table),
            Target::Database(d) => same(d, db),
        }
    }
}

/// What a statement does to one table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// ALTER TABLE without a rename or a partition data operation: its clauses (tokens), for
    /// `apply`.
    Altered(Vec<Vec<String>>),
    /// TRUNCATE: every row is gone, with no row events.
    Truncated,
    /// DROP TABLE, DROP DATABASE, or renamed to another name: no table of this name is left.
    Dropped,
    /// A new table now has this name (CREATE, CREATE OR REPLACE, renamed into this name): its
    /// rows are not the ones followed so far. `if_not_exists`: CREATE TABLE IF NOT EXISTS, which
    /// changes nothing when the table exists.
    Replaced {
        /// `CREATE TABLE IF NOT EXISTS`.
        if_not_exists: bool,
    },
    /// Rows changed without row events (partitions dropped, truncated, exchanged or converted,
    /// a tablespace imported).
    RowsRewritten,
}

/// The tables `sql` (run with `default_db` as the current database) changes, and how. A table
/// appears at most once, with its final change.
pub fn changes(sql: &str, default_db: &str) -> Vec<(Target, Change)> {
    let toks = tokens(sql);
    let mut out: Vec<(Target, Change)> = Vec::new();
    let mut i;
    let word = |i: usize| toks.get(i).filter(|t| !t.starts_with('`'));
    match word(0).map(|w| w.to_ascii_uppercase()).as_deref() {
        Some("ALTER") => {
            i = 1;
            while kw(toks.get(i), "ONLINE") || kw(toks.get(i), "IGNORE") {
                i += 1;
            }
            if !kw(toks.get(i), "TABLE") {
                return out;
            }
            i = skip_if_exists(&toks, i + 1);
            let Some(table) = table_name(&toks, &mut i, default_db) else {
                return out;
            };
            if kw(toks.get(i), "NOWAIT") {
                i += 1;
            } else if kw(toks.get(i), "WAIT") {
                i += 2;
            }
            alter_changes(table, toks.get(i..).unwrap_or(&[]), default_db, &mut out);
        }
        Some("RENAME") => {
            i = 1;
            if !(kw(toks.get(i), "TABLE") || kw(toks.get(i), "TABLES")) {
                return out;
            }
            i = skip_if_exists(&toks, i + 1);
            for pair in clauses(toks.get(i..).unwrap_or(&[])) {
                let mut j = 0;
                let Some(from) = table_name(pair, &mut j, default_db) else {
                    continue;
                };
                while j < pair.len() && !kw(pair.get(j), "TO") {
                    j += 1; // WAIT n / NOWAIT
                }
                j += 1;
                let Some(to) = table_name(pair, &mut j, default_db) else {
                    continue;
                };
                set(&mut out, from, Change::Dropped);
                set(
                    &mut out,
                    to,
                    Change::Replaced {
                        if_not_exists: false,
                    },
                );
            }
        }
        Some("CREATE") => {
            i = 1;
            if kw(toks.get(i), "OR") && kw(toks.get(i + 1), "REPLACE") {
                i += 2;
            }
            if kw(toks.get(i), "TEMPORARY") || !kw(toks.get(i), "TABLE") {
                return out;
            }
            let if_not_exists = kw(toks.get(i + 1), "IF");
            i = skip_if_exists(&toks, i + 1);
            if let Some(t) = table_name(&toks, &mut i, default_db) {
                set(&mut out, t, Change::Replaced { if_not_exists });
            }
        }
        Some("DROP") => {
            i = 1;
            if kw(toks.get(i), "DATABASE") || kw(toks.get(i), "SCHEMA") {
                i = skip_if_exists(&toks, i + 1);
                if let Some(db) = toks.get(i) {
                    out.push((Target::Database(ident(db)), Change::Dropped));
                }
                return out;
            }
            if !(kw(toks.get(i), "TABLE") || kw(toks.get(i), "TABLES")) {
                return out; // also DROP TEMPORARY TABLE
            }
            i = skip_if_exists(&toks, i + 1);
            for name in clauses(toks.get(i..).unwrap_or(&[])) {
                let mut j = 0;
                if let Some(t) = table_name(name, &mut j, default_db) {
                    set(&mut out, t, Change::Dropped);
                }
            }
        }
        Some("TRUNCATE") => {
            i = 1;
            if kw(toks.get(i), "TABLE") {
                i += 1;
            }
            if let Some(t) = table_name(&toks, &mut i, default_db) {
                set(&mut out, t, Change::Truncated);
            }
        }
        _ => {}
    }
    out
}

/// Records `change` as the table's latest change.
fn set(out: &mut Vec<(Target, Change)>, target: Target, change: Change) {
    out.retain(|(t, _)| t != &target);
    out.push((target, change));
}

/// The changes of `ALTER TABLE table <rest>`.
fn alter_changes(
    table: Target,
    rest: &[String],
    default_db: &str,
    out: &mut Vec<(Target, Change)>,
) {
    let list: Vec<Vec<String>> = clauses(rest).into_iter().map(<[String]>::to_vec).collect();
    let mut rewritten = false;
    for c in &list {
        let w = |j: usize| c.get(j).map(|t| t.to_ascii_uppercase()).unwrap_or_default();
        match (w(0).as_str(), w(1).as_str()) {
            ("RENAME", next) if !matches!(next, "COLUMN" | "INDEX" | "KEY") => {
                let mut j = if matches!(next, "TO" | "AS") { 2 } else { 1 };
                if let Some(to) = table_name(c, &mut j, default_db) {
                    set(out, table.clone(), Change::Dropped);
                    set(
                        out,
                        to,
                        Change::Replaced {
                            if_not_exists: false,
                        },
                    );
                    return;
                }
            }
            ("DROP" | "TRUNCATE", "PARTITION") | ("DISCARD" | "IMPORT", _) => rewritten = true,
            ("EXCHANGE", "PARTITION") => {
                rewritten = true;
                if let Some(k) = c.iter().position(|t| kw(Some(t), "TABLE")) {
                    let mut j = k + 1;
                    if let Some(other) = table_name(c, &mut j, default_db) {
                        set(out, other, Change::RowsRewritten);
                    }
                }
            }
            // MariaDB: CONVERT PARTITION p TO TABLE x / CONVERT TABLE x TO PARTITION p.
            ("CONVERT", "PARTITION") => {
                rewritten = true;
                if let Some(k) = c.iter().position(|t| kw(Some(t), "TABLE")) {
                    let mut j = k + 1;
                    if let Some(other) = table_name(c, &mut j, default_db) {
                        let created = Change::Replaced {
                            if_not_exists: false,
                        };
                        set(out, other, created);
                    }
                }
            }
            ("CONVERT", "TABLE") => {
                rewritten = true;
                let mut j = 2;
                if let Some(other) = table_name(c, &mut j, default_db) {
                    set(out, other, Change::Dropped);
                }
            }
            _ => {}
        }
    }
    let change = if rewritten {
        Change::RowsRewritten
    } else {
        Change::Altered(list)
    };
    set(out, table, change);
}

/// `[db.]name` at `toks[*i]`, advancing `i` past it.
fn table_name(toks: &[String], i: &mut usize, default_db: &str) -> Option<Target> {
    let first = toks.get(*i)?;
    if !first.starts_with('`') && !first.chars().next().is_some_and(is_ident_char) {
        return None;
    }
    *i += 1;
    if toks.get(*i).map(String::as_str) == Some(".") {
        let table = toks.get(*i + 1)?;
        *i += 2;
        return Some(Target::Table {
            db: ident(first),
            table: ident(table),
        });
    }
    Some(Target::Table {
        db: default_db.to_string(),
        table: ident(first),
    })
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_' || c == '$'
}

/// Tokens of a DDL statement: identifiers/keywords (unquoted, case kept), quoted identifiers
/// (with a leading backquote), punctuation; string literals become `'` and comments are
/// dropped, except executable comments (`/*! … */`, `/*M! … */`) whose text is kept.
fn tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let chars: Vec<char> = sql.chars().collect();
    let at = |i: usize| chars.get(i).copied();
    let mut i = 0;
    while let Some(c) = at(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '`' {
            let mut s = String::from("`");
            i += 1;
            while let Some(ch) = at(i) {
                i += 1;
                if ch == '`' {
                    if at(i) == Some('`') {
                        s.push('`');
                        i += 1;
                        continue;
                    }
                    break;
                }
                s.push(ch);
            }
            out.push(s);
        } else if c == '\'' || c == '"' {
            i += 1;
            while let Some(ch) = at(i) {
                i += 1;
                if ch == '\\' {
                    i += 1;
                } else if ch == c {
                    if at(i) == Some(c) {
                        i += 1; // a doubled quote inside the literal
                        continue;
                    }
                    break;
                }
            }
            out.push("'".into());
        } else if is_ident_char(c) {
            let mut s = String::new();
            while let Some(ch) = at(i).filter(|ch| is_ident_char(*ch)) {
                s.push(ch);
                i += 1;
            }
            out.push(s);
        } else if c == '/' && at(i + 1) == Some('*') {
            i += 2;
            let executable = at(i) == Some('!') || (at(i) == Some('M') && at(i + 1) == Some('!'));
            if executable {
                // keep the statement text inside; skip the marker and version number
                i += if at(i) == Some('!') { 1 } else { 2 };
                while at(i).is_some_and(|ch| ch.is_ascii_digit()) {
                    i += 1;
                }
            } else {
                while i < chars.len() && !(at(i) == Some('*') && at(i + 1) == Some('/')) {
                    i += 1;
                }
                i += 2;
            }
        } else if c == '*' && at(i + 1) == Some('/') {
            i += 2; // the end of an executable comment
        } else if c == '#'
            || (c == '-' && at(i + 1) == Some('-') && at(i + 2).is_none_or(char::is_whitespace))
        {
            while at(i).is_some_and(|ch| ch != '\n') {
                i += 1;
            }
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

/// Applies the clauses of an ALTER TABLE (from `Change::Altered`) to a column order.
pub fn apply(model: &mut Vec<String>, clauses: &[Vec<String>]) -> Applied {
    for clause in clauses {
        if clause.is_empty() {
            continue;
        }
        if apply_clause(model, clause).is_none() {
            return Applied::Unknown;
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

/// Words that start an ADD or DROP of something other than a column.
fn is_non_column(w: &str) -> bool {
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
}

/// Where the column of an ADD or DROP clause starts (past `COLUMN` and `IF [NOT] EXISTS`), or
/// None when the clause adds or drops something other than a column.
fn column_operand(c: &[String], second_word: &str) -> Option<usize> {
    if is_non_column(second_word) {
        return None;
    }
    let j = if kw(c.get(1), "COLUMN") { 2 } else { 1 };
    Some(skip_if_exists(c, j))
}

fn apply_clause(model: &mut Vec<String>, c: &[String]) -> Option<()> {
    let word = |j: usize| c.get(j).map(|t| t.to_ascii_uppercase()).unwrap_or_default();
    match word(0).as_str() {
        "ADD" => {
            let Some(j) = column_operand(c, &word(1)) else {
                return Some(());
            };
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
            let Some(j) = column_operand(c, &word(1)) else {
                return Some(());
            };
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
        // Partitioning changes that keep every row (the ones that do not are `RowsRewritten`).
        "PARTITION" | "REMOVE" | "REORGANIZE" | "COALESCE" | "REBUILD" | "OPTIMIZE" | "ANALYZE"
        | "CHECK" | "REPAIR" => Some(()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
