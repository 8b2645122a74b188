//! Column types: from `information_schema` to a [`ColumnKind`], and from a kind to the JSON
//! Schema the README's "Type mapping" section lists (the type contract).
//!
//! The kind is decided once per column, at discovery or plan time; encoders are chosen from it,
//! never per row.

use serde_json::{json, Map, Value};

use crate::config::TypeOptions;

/// Integer widths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IntWidth {
    /// 8 bits.
    Tiny,
    /// 16 bits.
    Small,
    /// 24 bits.
    Medium,
    /// 32 bits.
    Int,
    /// 64 bits.
    Big,
}

impl IntWidth {
    fn bits(self) -> u32 {
        match self {
            IntWidth::Tiny => 8,
            IntWidth::Small => 16,
            IntWidth::Medium => 24,
            IntWidth::Int => 32,
            IntWidth::Big => 64,
        }
    }

    /// (minimum, maximum) for the width and signedness.
    pub(crate) fn range(self, unsigned: bool) -> (i64, u64) {
        let bits = self.bits();
        if unsigned {
            (
                0,
                if bits == 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                },
            )
        } else {
            let shift = 64 - bits;
            (i64::MIN >> shift, (i64::MAX >> shift) as u64)
        }
    }
}

/// The `information_schema.COLUMNS` facts a column's kind is decided from.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RawColumnType<'a> {
    /// `DATA_TYPE`, e.g. `decimal`.
    pub data_type: &'a str,
    /// `COLUMN_TYPE`, e.g. `decimal(12,2) unsigned`.
    pub column_type: &'a str,
    /// `CHARACTER_MAXIMUM_LENGTH`.
    pub max_chars: Option<u64>,
    /// `NUMERIC_PRECISION` (bits for `bit`).
    pub precision: Option<u64>,
    /// `NUMERIC_SCALE`.
    pub scale: Option<u64>,
    /// `DATETIME_PRECISION`.
    pub fsp: Option<u64>,
    /// MariaDB: a `longtext` with `CHECK (json_valid(col))`.
    pub is_mariadb_json: bool,
}

/// What a column holds, as far as extraction cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColumnKind {
    /// `tinyint(1)` read as a boolean.
    Boolean,
    /// Any integer type.
    Integer {
        /// Storage width.
        width: IntWidth,
        /// `unsigned`.
        unsigned: bool,
    },
    /// `bit(n)`; `bit(1)` is a boolean.
    Bit {
        /// n.
        bits: u32,
    },
    /// `year`.
    Year,
    /// `decimal(p,s)` / `numeric`.
    Decimal {
        /// Precision.
        precision: u32,
        /// Scale.
        scale: u32,
    },
    /// `float`.
    Float,
    /// `double` / `real`.
    Double,
    /// `date`.
    Date,
    /// `datetime(fsp)`.
    DateTime {
        /// Fractional digits.
        fsp: u32,
    },
    /// `timestamp(fsp)`.
    Timestamp {
        /// Fractional digits.
        fsp: u32,
    },
    /// `time(fsp)`.
    Time {
        /// Fractional digits.
        fsp: u32,
    },
    /// `char`, `varchar` (with a length) and the `text` family (without).
    Text {
        /// `maxLength` in characters, for char/varchar.
        max_chars: Option<u64>,
    },
    /// `enum(...)`.
    Enum {
        /// Its labels, in order.
        values: Vec<String>,
    },
    /// `set(...)`.
    Set {
        /// Its labels, in order.
        values: Vec<String>,
    },
    /// `binary`, `varbinary`, `*blob`.
    Binary,
    /// MySQL `json`, MariaDB `longtext` with `CHECK (json_valid(col))`.
    Json,
    /// `geometry`, `point`, ... (GeoJSON).
    Spatial,
    /// MariaDB `uuid`.
    Uuid,
    /// MariaDB `inet4`.
    Inet4,
    /// MariaDB `inet6`.
    Inet6,
    /// Anything we cannot read exactly.
    Unsupported,
}

impl ColumnKind {
    /// Decides the kind from `DATA_TYPE`, `COLUMN_TYPE` and friends.
    pub(crate) fn from_information_schema(
        raw: &RawColumnType<'_>,
        opts: &TypeOptions,
    ) -> ColumnKind {
        let RawColumnType {
            data_type,
            column_type,
            max_chars,
            precision,
            scale,
            fsp,
            is_mariadb_json,
        } = *raw;
        let dt = data_type.to_ascii_lowercase();
        let ct = column_type.to_ascii_lowercase();
        let unsigned = ct.contains("unsigned");
        let int = |width| ColumnKind::Integer { width, unsigned };
        let fsp = fsp.unwrap_or(0) as u32;
        match dt.as_str() {
            "tinyint" if opts.tinyint1_as_boolean && ct.starts_with("tinyint(1)") => {
                ColumnKind::Boolean
            }
            "tinyint" => int(IntWidth::Tiny),
            "smallint" => int(IntWidth::Small),
            "mediumint" => int(IntWidth::Medium),
            "int" | "integer" => int(IntWidth::Int),
            "bigint" => int(IntWidth::Big),
            "bit" => ColumnKind::Bit {
                bits: precision.unwrap_or_else(|| paren_number(&ct).unwrap_or(1)) as u32,
            },
            "year" => ColumnKind::Year,
            "decimal" | "numeric" => ColumnKind::Decimal {
                precision: precision.unwrap_or(10) as u32,
                scale: scale.unwrap_or(0) as u32,
            },
            "float" => ColumnKind::Float,
            "double" | "real" | "double precision" => ColumnKind::Double,
            "date" => ColumnKind::Date,
            "datetime" => ColumnKind::DateTime { fsp },
            "timestamp" => ColumnKind::Timestamp { fsp },
            "time" => ColumnKind::Time { fsp },
            "char" | "varchar" => ColumnKind::Text { max_chars },
            "longtext" if is_mariadb_json => ColumnKind::Json,
            "tinytext" | "text" | "mediumtext" | "longtext" => ColumnKind::Text { max_chars: None },
            "enum" => ColumnKind::Enum {
                values: parse_labels(column_type),
            },
            "set" => ColumnKind::Set {
                values: parse_labels(column_type),
            },
            "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => {
                ColumnKind::Binary
            }
            "json" => ColumnKind::Json,
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => ColumnKind::Spatial,
            "uuid" => ColumnKind::Uuid,
            "inet4" => ColumnKind::Inet4,
            "inet6" => ColumnKind::Inet6,
            _ => ColumnKind::Unsupported,
        }
    }

    /// Whether the column can be a replication key (orderable, compared exactly).
    pub(crate) fn is_replication_key_candidate(&self) -> bool {
        matches!(
            self,
            ColumnKind::Integer { .. }
                | ColumnKind::Decimal { .. }
                | ColumnKind::Float
                | ColumnKind::Double
                | ColumnKind::Year
                | ColumnKind::Date
                | ColumnKind::DateTime { .. }
                | ColumnKind::Timestamp { .. }
                | ColumnKind::Time { .. }
                | ColumnKind::Text { max_chars: Some(_) }
                | ColumnKind::Uuid
        )
    }

    /// The JSON Schema of a column of this kind.
    pub(crate) fn json_schema(&self, nullable: bool, opts: &TypeOptions) -> Value {
        let mut s = Map::new();
        // Zero dates ('0000-00-00') are emitted as null, so temporal columns that can hold
        // them are always nullable in the schema, whatever the column says.
        let nullable = nullable
            || matches!(
                self,
                ColumnKind::Date | ColumnKind::DateTime { .. } | ColumnKind::Timestamp { .. }
            );
        let types = |base: &[&str]| -> Value {
            let mut v: Vec<Value> = Vec::new();
            if nullable {
                v.push(json!("null"));
            }
            v.extend(base.iter().map(|t| json!(t)));
            Value::Array(v)
        };
        match self {
            ColumnKind::Boolean | ColumnKind::Bit { bits: 1 } => {
                s.insert("type".into(), types(&["boolean"]));
            }
            ColumnKind::Integer { width, unsigned } => {
                let (min, max) = width.range(*unsigned);
                s.insert("type".into(), types(&["integer"]));
                s.insert("minimum".into(), json!(min));
                s.insert("maximum".into(), json!(max));
            }
            ColumnKind::Bit { bits } => {
                let max = if *bits >= 64 {
                    u64::MAX
                } else {
                    (1u64 << bits) - 1
                };
                s.insert("type".into(), types(&["integer"]));
                s.insert("minimum".into(), json!(0));
                s.insert("maximum".into(), json!(max));
            }
            ColumnKind::Year => {
                s.insert("type".into(), types(&["integer"]));
                s.insert("minimum".into(), json!(0));
                s.insert("maximum".into(), json!(2155));
            }
            ColumnKind::Decimal { precision, scale } => {
                if opts.decimal_as_string {
                    s.insert("type".into(), types(&["string"]));
                    s.insert("format".into(), json!("x-singer.decimal"));
                    s.insert("precision".into(), json!(precision));
                    s.insert("scale".into(), json!(scale));
                } else {
                    s.insert("type".into(), types(&["number"]));
                }
            }
            ColumnKind::Float | ColumnKind::Double => {
                s.insert("type".into(), types(&["number"]));
            }
            ColumnKind::Date => {
                s.insert("type".into(), types(&["string"]));
                s.insert("format".into(), json!("date"));
            }
            ColumnKind::DateTime { .. } | ColumnKind::Timestamp { .. } => {
                s.insert("type".into(), types(&["string"]));
                s.insert("format".into(), json!("date-time"));
            }
            ColumnKind::Time { .. } => {
                s.insert("type".into(), types(&["string"]));
            }
            ColumnKind::Text { max_chars } => {
                s.insert("type".into(), types(&["string"]));
                if let Some(n) = max_chars {
                    s.insert("maxLength".into(), json!(n));
                }
            }
            ColumnKind::Enum { values } => {
                s.insert("type".into(), types(&["string"]));
                let mut labels: Vec<Value> = values.iter().map(|v| json!(v)).collect();
                // MySQL stores '' (index 0) for an invalid label in non-strict mode.
                if !values.iter().any(String::is_empty) {
                    labels.push(json!(""));
                }
                if nullable {
                    labels.push(Value::Null);
                }
                s.insert("enum".into(), Value::Array(labels));
            }
            ColumnKind::Set { .. } | ColumnKind::Uuid | ColumnKind::Inet4 | ColumnKind::Inet6 => {
                s.insert("type".into(), types(&["string"]));
            }
            ColumnKind::Binary => {
                s.insert("type".into(), types(&["string"]));
                s.insert("contentEncoding".into(), json!("base64"));
            }
            ColumnKind::Json => {
                if opts.json_as_string {
                    s.insert("type".into(), types(&["string"]));
                } else {
                    // Any JSON document; `null` is a valid document even in a NOT NULL column.
                    s.insert(
                        "type".into(),
                        json!(["null", "object", "array", "string", "number", "boolean"]),
                    );
                }
            }
            ColumnKind::Spatial => {
                s.insert("type".into(), types(&["object"]));
            }
            ColumnKind::Unsupported => {}
        }
        Value::Object(s)
    }
}

/// The number in the first parentheses of a column type: `bit(5)` -> 5.
fn paren_number(column_type: &str) -> Option<u64> {
    let start = column_type.find('(')? + 1;
    let end = column_type[start..].find(')')? + start;
    column_type[start..end].trim().parse().ok()
}

/// Parses the labels of `enum('a','b''c')` / `set(...)` as `COLUMN_TYPE` prints them
/// (quotes doubled, backslashes escaped).
pub(crate) fn parse_labels(column_type: &str) -> Vec<String> {
    let Some(open) = column_type.find('(') else {
        return vec![];
    };
    let mut out = Vec::new();
    let mut chars = column_type[open + 1..].chars().peekable();
    loop {
        // Skip to the next opening quote, or stop at the closing parenthesis.
        match chars.next() {
            Some('\'') => {}
            Some(')') | None => break,
            Some(_) => continue,
        }
        let mut label = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    label.push('\'');
                }
                '\'' => break,
                '\\' => match chars.next() {
                    Some('0') => label.push('\0'),
                    Some('n') => label.push('\n'),
                    Some('r') => label.push('\r'),
                    Some('t') => label.push('\t'),
                    Some('b') => label.push('\u{8}'),
                    Some('Z') => label.push('\u{1a}'),
                    Some(other) => label.push(other),
                    None => label.push('\\'),
                },
                c => label.push(c),
            }
        }
        out.push(label);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(dt: &'a str, ct: &'a str) -> RawColumnType<'a> {
        RawColumnType {
            data_type: dt,
            column_type: ct,
            ..RawColumnType::default()
        }
    }

    fn kind(dt: &str, ct: &str) -> ColumnKind {
        ColumnKind::from_information_schema(&raw(dt, ct), &TypeOptions::default())
    }

    #[test]
    fn labels() {
        assert_eq!(parse_labels("enum('a','b')"), vec!["a", "b"]);
        assert_eq!(
            parse_labels(r"enum('a\\b','c''d','x,y','é')"),
            vec![r"a\b", "c'd", "x,y", "é"]
        );
        assert_eq!(parse_labels("set('')"), vec![""]);
    }

    #[test]
    fn integer_ranges() {
        assert_eq!(IntWidth::Tiny.range(false), (-128, 127));
        assert_eq!(IntWidth::Medium.range(true), (0, 16_777_215));
        assert_eq!(IntWidth::Big.range(false), (i64::MIN, i64::MAX as u64));
        assert_eq!(IntWidth::Big.range(true), (0, u64::MAX));
    }

    #[test]
    fn kinds() {
        assert_eq!(kind("tinyint", "tinyint(1)"), ColumnKind::Boolean);
        assert_eq!(
            kind("tinyint", "tinyint(4)"),
            ColumnKind::Integer {
                width: IntWidth::Tiny,
                unsigned: false
            }
        );
        assert_eq!(kind("bit", "bit(5)"), ColumnKind::Bit { bits: 5 });
        assert_eq!(kind("vector", "vector(3)"), ColumnKind::Unsupported);
        let off = TypeOptions {
            tinyint1_as_boolean: false,
            ..TypeOptions::default()
        };
        assert!(matches!(
            ColumnKind::from_information_schema(&raw("tinyint", "tinyint(1)"), &off),
            ColumnKind::Integer { .. }
        ));
    }

    #[test]
    fn schemas() {
        let o = TypeOptions::default();
        assert_eq!(
            ColumnKind::Date.json_schema(false, &o),
            json!({"type": ["null", "string"], "format": "date"})
        );
        assert_eq!(
            ColumnKind::Integer {
                width: IntWidth::Big,
                unsigned: true
            }
            .json_schema(false, &o),
            json!({"type": ["integer"], "minimum": 0, "maximum": 18446744073709551615u64})
        );
        assert_eq!(
            ColumnKind::Enum {
                values: vec!["a".into()]
            }
            .json_schema(true, &o),
            json!({"type": ["null", "string"], "enum": ["a", "", null]})
        );
        let s = TypeOptions {
            decimal_as_string: true,
            ..o
        };
        assert_eq!(
            ColumnKind::Decimal {
                precision: 12,
                scale: 2
            }
            .json_schema(true, &s),
            json!({"type": ["null", "string"], "format": "x-singer.decimal", "precision": 12, "scale": 2})
        );
    }
}
