//! Parquet batch files, typed from the SQL type of each column (never guessed from values):
//!
//! | SQL | Arrow |
//! |---|---|
//! | `tinyint(1)` (as boolean), `bit(1)` | Boolean |
//! | `tinyint`…`bigint` | Int8…Int64, unsigned UInt8…UInt64 (`mediumint` Int32/UInt32) |
//! | `bit(n>1)` | UInt64 |
//! | `year` | Int16 |
//! | `decimal(p,s)` | Decimal128(p,s) for p ≤ 38, else Decimal256(p,s): exact digits |
//! | `float`, `double` | Float32, Float64 |
//! | `date` | Date32 (zero/invalid dates null) |
//! | `datetime`, `timestamp` | Timestamp(µs, "UTC") (zero/invalid null) |
//! | `time` | Utf8, as MySQL prints it (`-838:59:59.000000`; Arrow durations hold it, but a string keeps the exact text targets load as-is) |
//! | text, `enum`, `set`, `uuid`, `inet*` | Utf8 |
//! | JSON, spatial (GeoJSON) | Utf8 holding the JSON text |
//! | binary and blobs | Binary |
//!
//! Rows are buffered in Arrow builders for at most [`ARROW_BATCH_ROWS`] rows, then handed to
//! the Parquet writer, which closes a row group every [`ROW_GROUP_ROWS`] rows, or sooner once
//! the group's buffers hold [`ROW_GROUP_MEMORY`] bytes: memory stays bounded whatever
//! `batch_size` is and however wide the rows are.
//!
//! Dictionary encoding is chosen per column from the file's first batch: a column whose values
//! there are mostly distinct (keys, timestamps, free text) is written without a dictionary,
//! which would only cost CPU (building it, then abandoning it) and never shrink the file; such
//! a column of integers, dates or timestamps is delta-encoded (`DELTA_BINARY_PACKED`).

use std::fs::File;
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Decimal256Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, Int8Builder,
    StringBuilder, TimestampMicrosecondBuilder, UInt16Builder, UInt32Builder, UInt64Builder,
    UInt8Builder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_buffer::i256;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::catalog::types::{ColumnKind, IntWidth};
use crate::config::BatchCompression;
use crate::encode::temporal::valid_date;
use crate::encode::ColumnWarnings;
use crate::error::{Error, Result};
use crate::plan::StreamPlan;
use crate::singer::time::days_from_civil;
use crate::source::wire::Cells;

/// Rows buffered in Arrow builders before they go to the Parquet writer.
pub(crate) const ARROW_BATCH_ROWS: usize = 8192;
/// Rows per Parquet row group.
pub(crate) const ROW_GROUP_ROWS: usize = 65_536;
/// A row group is closed once its buffered pages take this many bytes.
const ROW_GROUP_MEMORY: usize = 8 * 1024 * 1024;
/// A column whose first batch has more than this share of distinct values has no dictionary.
const DICTIONARY_MAX_DISTINCT: f64 = 0.5;
/// Rows of the first batch sampled for that share.
const DICTIONARY_SAMPLE_ROWS: usize = 2048;

enum Col {
    Bool(BooleanBuilder, bool),
    I8(Int8Builder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
    Bits(UInt64Builder),
    Dec128(Decimal128Builder, u32),
    Dec256(Decimal256Builder, u32),
    F32(Float32Builder),
    F64(Float64Builder),
    Date(Date32Builder),
    Ts(TimestampMicrosecondBuilder),
    Utf8(StringBuilder),
    Bin(BinaryBuilder),
}

/// The Arrow type of a column kind (see the table above).
pub(crate) fn arrow_type(kind: &ColumnKind) -> DataType {
    match kind {
        ColumnKind::Boolean | ColumnKind::Bit { bits: 1 } => DataType::Boolean,
        ColumnKind::Integer { width, unsigned } => match (width, unsigned) {
            (IntWidth::Tiny, false) => DataType::Int8,
            (IntWidth::Small, false) => DataType::Int16,
            (IntWidth::Medium | IntWidth::Int, false) => DataType::Int32,
            (IntWidth::Big, false) => DataType::Int64,
            (IntWidth::Tiny, true) => DataType::UInt8,
            (IntWidth::Small, true) => DataType::UInt16,
            (IntWidth::Medium | IntWidth::Int, true) => DataType::UInt32,
            (IntWidth::Big, true) => DataType::UInt64,
        },
        ColumnKind::Bit { .. } => DataType::UInt64,
        ColumnKind::Year => DataType::Int16,
        ColumnKind::Decimal { precision, scale } if *precision <= 38 => {
            DataType::Decimal128(*precision as u8, *scale as i8)
        }
        ColumnKind::Decimal { precision, scale } => {
            DataType::Decimal256(*precision as u8, *scale as i8)
        }
        ColumnKind::Float => DataType::Float32,
        ColumnKind::Double => DataType::Float64,
        ColumnKind::Date => DataType::Date32,
        ColumnKind::DateTime { .. } | ColumnKind::Timestamp { .. } => {
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        ColumnKind::Binary => DataType::Binary,
        _ => DataType::Utf8,
    }
}

fn builder(kind: &ColumnKind) -> Col {
    match (kind, arrow_type(kind)) {
        (ColumnKind::Bit { .. }, DataType::Boolean) => Col::Bool(BooleanBuilder::new(), true),
        (_, DataType::Boolean) => Col::Bool(BooleanBuilder::new(), false),
        (ColumnKind::Bit { .. }, _) => Col::Bits(UInt64Builder::new()),
        (_, DataType::Int8) => Col::I8(Int8Builder::new()),
        (_, DataType::Int16) => Col::I16(Int16Builder::new()),
        (_, DataType::Int32) => Col::I32(Int32Builder::new()),
        (_, DataType::Int64) => Col::I64(Int64Builder::new()),
        (_, DataType::UInt8) => Col::U8(UInt8Builder::new()),
        (_, DataType::UInt16) => Col::U16(UInt16Builder::new()),
        (_, DataType::UInt32) => Col::U32(UInt32Builder::new()),
        (_, DataType::UInt64) => Col::U64(UInt64Builder::new()),
        (_, DataType::Decimal128(p, s)) => Col::Dec128(
            Decimal128Builder::new().with_data_type(DataType::Decimal128(p, s)),
            s as u32,
        ),
        (_, DataType::Decimal256(p, s)) => Col::Dec256(
            Decimal256Builder::new().with_data_type(DataType::Decimal256(p, s)),
            s as u32,
        ),
        (_, DataType::Float32) => Col::F32(Float32Builder::new()),
        (_, DataType::Float64) => Col::F64(Float64Builder::new()),
        (_, DataType::Date32) => Col::Date(Date32Builder::new()),
        (_, DataType::Timestamp(..)) => {
            Col::Ts(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
        }
        (_, DataType::Binary) => Col::Bin(BinaryBuilder::new()),
        _ => Col::Utf8(StringBuilder::new()),
    }
}

/// An open Parquet batch file.
pub(crate) struct ParquetFile {
    /// The file until the first batch; then the writer, made with that batch's properties.
    writer: Writer,
    codec: Compression,
    schema: SchemaRef,
    cols: Vec<Col>,
    rows: usize,
    stream: String,
}

impl ParquetFile {
    /// Starts a file for `plan`'s columns.
    pub(crate) fn new(
        file: File,
        plan: &StreamPlan,
        compression: BatchCompression,
    ) -> Result<Self> {
        let fields: Vec<Field> = plan
            .columns
            .iter()
            .map(|c| Field::new(&c.name, arrow_type(&c.kind), true))
            .collect();
        let schema = Arc::new(Schema::new(fields));
        let codec = match compression {
            BatchCompression::Zstd => Compression::ZSTD(ZstdLevel::default()),
            BatchCompression::Snappy => Compression::SNAPPY,
            BatchCompression::Gzip => Compression::GZIP(GzipLevel::default()),
            BatchCompression::None => Compression::UNCOMPRESSED,
        };
        Ok(ParquetFile {
            writer: Writer::Pending(Some(file)),
            codec,
            schema,
            cols: plan.columns.iter().map(|c| builder(&c.kind)).collect(),
            rows: 0,
            stream: plan.stream_id.clone(),
        })
    }

    /// Appends one row.
    pub(crate) fn append(
        &mut self,
        row: &impl Cells,
        warnings: &mut [ColumnWarnings],
    ) -> Result<()> {
        for (i, col) in self.cols.iter_mut().enumerate() {
            append_cell(col, row.cell(i), &mut warnings[i]);
        }
        self.rows += 1;
        if self.rows >= ARROW_BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.rows == 0 {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self.cols.iter_mut().map(finish_col).collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays).map_err(|e| {
            Error::runtime(format!(
                "stream '{}': building a Parquet batch: {e}",
                self.stream
            ))
        })?;
        let stream = &self.stream;
        let err = |e: parquet::errors::ParquetError| {
            Error::runtime(format!("stream '{stream}': writing a Parquet file: {e}"))
        };
        let writer = self.writer.open(&batch, self.codec).map_err(err)?;
        writer.write(&batch).map_err(err)?;
        if writer.in_progress_size() >= ROW_GROUP_MEMORY {
            writer.flush().map_err(err)?;
        }
        self.rows = 0;
        Ok(())
    }

    /// Writes the footer; returns the file for syncing.
    pub(crate) fn finish(mut self) -> Result<File> {
        if matches!(self.writer, Writer::Pending(_)) && self.rows == 0 {
            // No row at all: a valid file with the schema and no row group.
            let empty = RecordBatch::new_empty(self.schema.clone());
            self.writer.open(&empty, self.codec).map_err(|e| {
                Error::runtime(format!(
                    "stream '{}': cannot start a Parquet file: {e}",
                    self.stream
                ))
            })?;
        }
        self.flush()?;
        let Writer::Open(writer) = self.writer else {
            return Err(Error::runtime(format!(
                "stream '{}': a Parquet file that was never started",
                self.stream
            )));
        };
        writer.into_inner().map_err(|e| {
            Error::runtime(format!(
                "stream '{}': closing a Parquet file: {e}",
                self.stream
            ))
        })
    }
}

/// The Parquet writer of a file, made when its first batch is known.
enum Writer {
    Pending(Option<File>),
    Open(Box<ArrowWriter<File>>),
}

impl Writer {
    /// The writer, made from `first` (the file's first batch) when not made yet.
    fn open(
        &mut self,
        first: &RecordBatch,
        codec: Compression,
    ) -> parquet::errors::Result<&mut ArrowWriter<File>> {
        if let Writer::Pending(file) = self {
            let Some(file) = file.take() else {
                return Err(parquet::errors::ParquetError::General(
                    "a Parquet file that failed to start".into(),
                ));
            };
            let mut props = WriterProperties::builder()
                .set_compression(codec)
                .set_max_row_group_row_count(Some(ROW_GROUP_ROWS));
            for (field, column) in first.schema().fields().iter().zip(first.columns()) {
                if mostly_distinct(column) {
                    let path = parquet::schema::types::ColumnPath::from(field.name().as_str());
                    props = props.set_column_dictionary_enabled(path.clone(), false);
                    if let Some(encoding) = distinct_encoding(field.data_type()) {
                        props = props.set_column_encoding(path, encoding);
                    }
                }
            }
            let writer = ArrowWriter::try_new(file, first.schema(), Some(props.build()))?;
            *self = Writer::Open(Box::new(writer));
        }
        match self {
            Writer::Open(w) => Ok(w),
            Writer::Pending(_) => Err(parquet::errors::ParquetError::General(
                "a Parquet file that failed to start".into(),
            )),
        }
    }
}

/// The encoding of a column without dictionary: deltas for integers and times (keys and
/// timestamps mostly grow a little from row to row, so their deltas pack into a few bits and
/// leave zstd little to do); the writer's default (plain) for the rest, strings included
/// (their delta encodings gave little here, and fewer readers know them).
fn distinct_encoding(t: &DataType) -> Option<parquet::basic::Encoding> {
    use parquet::basic::Encoding;
    match t {
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64
        | DataType::Date32
        | DataType::Timestamp(..) => Some(Encoding::DELTA_BINARY_PACKED),
        _ => None,
    }
}

/// Whether most non-null values of the first [`DICTIONARY_SAMPLE_ROWS`] rows of `column` are
/// distinct (compared by their bytes).
fn mostly_distinct(column: &ArrayRef) -> bool {
    use arrow_array::cast::AsArray;
    use arrow_array::Array;
    let n = column.len().min(DICTIONARY_SAMPLE_ROWS);
    let mut seen = std::collections::HashSet::with_capacity(n);
    let mut values = 0usize;
    let data = column.to_data();
    let width = column.data_type().primitive_width();
    for i in (0..n).filter(|&i| column.is_valid(i)) {
        values += 1;
        let bytes: &[u8] = match (column.data_type(), width) {
            (DataType::Utf8, _) => column.as_string::<i32>().value(i).as_bytes(),
            (DataType::Binary, _) => column.as_binary::<i32>().value(i),
            (_, Some(w)) if !matches!(column.data_type(), DataType::Boolean) => {
                let at = (data.offset() + i) * w;
                match data
                    .buffers()
                    .first()
                    .and_then(|b| b.as_slice().get(at..at + w))
                {
                    Some(b) => b,
                    None => return false,
                }
            }
            _ => return false,
        };
        seen.insert(bytes);
    }
    values > 0 && seen.len() as f64 > values as f64 * DICTIONARY_MAX_DISTINCT
}

fn finish_col(c: &mut Col) -> ArrayRef {
    match c {
        Col::Bool(b, _) => Arc::new(b.finish()),
        Col::I8(b) => Arc::new(b.finish()),
        Col::I16(b) => Arc::new(b.finish()),
        Col::I32(b) => Arc::new(b.finish()),
        Col::I64(b) => Arc::new(b.finish()),
        Col::U8(b) => Arc::new(b.finish()),
        Col::U16(b) => Arc::new(b.finish()),
        Col::U32(b) => Arc::new(b.finish()),
        Col::U64(b) | Col::Bits(b) => Arc::new(b.finish()),
        Col::Dec128(b, _) => Arc::new(b.finish()),
        Col::Dec256(b, _) => Arc::new(b.finish()),
        Col::F32(b) => Arc::new(b.finish()),
        Col::F64(b) => Arc::new(b.finish()),
        Col::Date(b) => Arc::new(b.finish()),
        Col::Ts(b) => Arc::new(b.finish()),
        Col::Utf8(b) => Arc::new(b.finish()),
        Col::Bin(b) => Arc::new(b.finish()),
    }
}

fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or("")
}

/// An integer cell as MySQL prints it (ZEROFILL zeros allowed) as `T`; None when it is not
/// an integer or does not fit. Parsed from the bytes: no UTF-8 check, no `str` parse.
#[inline]
fn int_cell<T: TryFrom<i128>>(c: &[u8]) -> Option<T> {
    let (neg, digits) = match c.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, c),
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    if neg && T::try_from(-1).is_err() {
        // An unsigned type takes no sign, not even on zero (as `str::parse`).
        return None;
    }
    let first = digits
        .iter()
        .position(|&d| d != b'0')
        .unwrap_or(digits.len());
    let digits = &digits[first..];
    if digits.len() > 38 {
        return None;
    }
    let v = digits
        .iter()
        .fold(0i128, |acc, &d| acc * 10 + i128::from(d - b'0'));
    T::try_from(if neg { -v } else { v }).ok()
}

/// Digits without ZEROFILL padding.
fn unpad(b: &[u8]) -> &str {
    let s = text(b);
    let (neg, body) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let t = body.trim_start_matches('0');
    let t = if body.is_empty() {
        body
    } else if t.is_empty() || t.starts_with('.') {
        // keep one zero: `0000` -> `0`, `000.5` -> `0.5`
        &body[body.len() - t.len() - 1..]
    } else {
        t
    };
    if neg {
        // Negative zerofill cannot happen (zerofill implies unsigned).
        s
    } else {
        t
    }
}

fn append_cell(col: &mut Col, cell: Option<&[u8]>, warn: &mut ColumnWarnings) {
    match col {
        Col::Bool(b, from_bits) => match cell {
            None => b.append_null(),
            Some(c) if *from_bits => b.append_value(c.iter().any(|&x| x != 0)),
            Some(c) => b.append_value(!c.iter().all(|&x| x == b'0' || x == b'-')),
        },
        Col::I8(b) => b.append_option(cell.and_then(int_cell)),
        Col::I16(b) => b.append_option(cell.and_then(int_cell)),
        Col::I32(b) => b.append_option(cell.and_then(int_cell)),
        Col::I64(b) => b.append_option(cell.and_then(int_cell)),
        Col::U8(b) => b.append_option(cell.and_then(int_cell)),
        Col::U16(b) => b.append_option(cell.and_then(int_cell)),
        Col::U32(b) => b.append_option(cell.and_then(int_cell)),
        Col::U64(b) => b.append_option(cell.and_then(int_cell)),
        Col::Bits(b) => match cell {
            None => b.append_null(),
            Some(c) => b.append_value(c.iter().fold(0u64, |acc, &x| (acc << 8) | x as u64)),
        },
        Col::Dec128(b, scale) => match cell.and_then(|c| decimal_i128(c, *scale)) {
            Some(v) => b.append_value(v),
            None => b.append_null(),
        },
        Col::Dec256(b, scale) => match cell
            .and_then(|c| decimal_digits(c, *scale))
            .and_then(|d| i256::from_string(&d))
        {
            Some(v) => b.append_value(v),
            None => b.append_null(),
        },
        Col::F32(b) => b.append_option(cell.and_then(|c| unpad(c).parse().ok())),
        Col::F64(b) => b.append_option(cell.and_then(|c| unpad(c).parse().ok())),
        Col::Date(b) => match cell {
            Some(c) if valid_date(c) => b.append_value(date_days(c) as i32),
            Some(_) => {
                warn.invalid_dates += 1;
                b.append_null()
            }
            None => b.append_null(),
        },
        Col::Ts(b) => match cell {
            None => b.append_null(),
            Some(c) => match datetime_micros(c) {
                Some(v) => b.append_value(v),
                None => {
                    warn.invalid_dates += 1;
                    b.append_null()
                }
            },
        },
        Col::Utf8(b) => match cell {
            None => b.append_null(),
            Some(c) => match std::str::from_utf8(c) {
                Ok(s) => b.append_value(s),
                Err(_) => {
                    warn.invalid_utf8 += 1;
                    b.append_value(String::from_utf8_lossy(c))
                }
            },
        },
        Col::Bin(b) => match cell {
            None => b.append_null(),
            Some(c) => b.append_value(c),
        },
    }
}

/// `-123.45` with scale 2 -> -12345, without allocating (MySQL prints exactly `scale` fraction
/// digits; anything else is not a value this column can hold).
fn decimal_i128(c: &[u8], scale: u32) -> Option<i128> {
    let (neg, body) = match c.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, c),
    };
    let mut v: i128 = 0;
    let mut frac: Option<u32> = None;
    for &d in body {
        match d {
            b'0'..=b'9' => {
                v = v.checked_mul(10)?.checked_add((d - b'0') as i128)?;
                if let Some(f) = frac.as_mut() {
                    *f += 1;
                }
            }
            b'.' if frac.is_none() => frac = Some(0),
            _ => return None,
        }
    }
    if frac.unwrap_or(0) != scale {
        return None;
    }
    Some(if neg { -v } else { v })
}

/// `-123.45` with scale 2 -> `-12345` (MySQL prints exactly `scale` fraction digits).
fn decimal_digits(c: &[u8], scale: u32) -> Option<String> {
    let s = unpad(c);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if frac.len() != scale as usize {
        return None;
    }
    Some(format!("{int}{frac}"))
}

fn num(b: &[u8]) -> i64 {
    b.iter().fold(0i64, |acc, d| acc * 10 + (d - b'0') as i64)
}

fn date_days(c: &[u8]) -> i64 {
    days_from_civil(num(&c[0..4]), num(&c[5..7]) as u32, num(&c[8..10]) as u32)
}

/// Microseconds since the epoch of `YYYY-MM-DD HH:MM:SS[.f]` read as UTC; None when invalid.
fn datetime_micros(c: &[u8]) -> Option<i64> {
    if !crate::encode::temporal::valid_datetime(c) {
        return None;
    }
    let secs =
        date_days(c) * 86_400 + num(&c[11..13]) * 3600 + num(&c[14..16]) * 60 + num(&c[17..19]);
    let frac = c.get(20..).unwrap_or(&[]);
    let mut micros = 0i64;
    for i in 0..6 {
        micros = micros * 10 + frac.get(i).map_or(0, |d| (d - b'0') as i64);
    }
    Some(secs * 1_000_000 + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Row3(Vec<Option<Vec<u8>>>);

    impl Cells for Row3 {
        fn cell(&self, i: usize) -> Option<&[u8]> {
            self.0.get(i)?.as_deref()
        }
    }

    fn column(name: &str, kind: ColumnKind) -> crate::plan::PlannedColumn {
        crate::plan::PlannedColumn {
            name: name.into(),
            encoder: crate::encode::Encoder::Text,
            select_expr: format!("`{name}`"),
            kind,
        }
    }

    /// A file of 20,000 rows: the key delta-encoded without dictionary, the repeating column
    /// with one, the free text plain; every value read back.
    #[test]
    fn encodings_follow_the_first_batch() {
        use parquet::basic::Encoding;
        use parquet::file::reader::FileReader;
        use parquet::record::RowAccessor;
        let plan = StreamPlan::for_test(
            "t",
            vec![
                column(
                    "id",
                    ColumnKind::Integer {
                        width: IntWidth::Big,
                        unsigned: false,
                    },
                ),
                column("status", ColumnKind::Text { max_chars: None }),
                column("note", ColumnKind::Text { max_chars: None }),
            ],
            None,
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let file = File::create(&path).unwrap();
        let mut pq = ParquetFile::new(file, &plan, BatchCompression::Zstd).unwrap();
        let mut w = vec![ColumnWarnings::default(); 3];
        for i in 0..20_000i64 {
            let row = Row3(vec![
                Some(i.to_string().into_bytes()),
                Some(["new", "paid", "shipped"][(i % 3) as usize].into()),
                (i % 7 != 0).then(|| format!("note {i} of many").into_bytes()),
            ]);
            pq.append(&row, &mut w).unwrap();
        }
        pq.finish().unwrap();
        let reader =
            parquet::file::reader::SerializedFileReader::new(File::open(&path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.file_metadata().num_rows(), 20_000);
        let encodings = |c: usize| meta.row_group(0).column(c).encodings().collect::<Vec<_>>();
        assert!(
            encodings(0).contains(&Encoding::DELTA_BINARY_PACKED),
            "{:?}",
            encodings(0)
        );
        assert!(!encodings(0).contains(&Encoding::RLE_DICTIONARY));
        assert!(
            encodings(1).contains(&Encoding::RLE_DICTIONARY),
            "{:?}",
            encodings(1)
        );
        assert!(
            encodings(2).contains(&Encoding::PLAIN),
            "{:?}",
            encodings(2)
        );
        assert!(!encodings(2).contains(&Encoding::RLE_DICTIONARY));
        let rows: Vec<_> = reader
            .get_row_iter(None)
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(rows.len(), 20_000);
        for (i, r) in rows.iter().enumerate().step_by(997) {
            let i = i as i64;
            assert_eq!(r.get_long(0).unwrap(), i);
            assert_eq!(
                r.get_string(1).unwrap(),
                ["new", "paid", "shipped"][(i % 3) as usize]
            );
            if i % 7 == 0 {
                assert!(r.get_string(2).is_err(), "row {i}: null");
            } else {
                assert_eq!(r.get_string(2).unwrap(), &format!("note {i} of many"));
            }
        }
    }

    #[test]
    fn dictionaries_only_for_repeating_columns() {
        use arrow_array::{Int64Array, StringArray};
        let ids: ArrayRef = Arc::new(Int64Array::from_iter_values(0..5000));
        let five: ArrayRef = Arc::new(Int64Array::from_iter_values((0..5000).map(|i| i % 5)));
        let text: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..5000).map(|i| format!("note {i}")),
        ));
        let status: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..5000).map(|i| ["new", "paid"][i % 2]),
        ));
        let nulls: ArrayRef = Arc::new(StringArray::from(vec![None::<&str>; 10]));
        assert!(mostly_distinct(&ids));
        assert!(mostly_distinct(&text));
        assert!(!mostly_distinct(&five));
        assert!(!mostly_distinct(&status));
        assert!(!mostly_distinct(&nulls));
        // A slice is read at its offset.
        assert!(!mostly_distinct(&five.slice(7, 3000)));
        assert!(mostly_distinct(&ids.slice(7, 3000)));
    }

    #[test]
    fn parsing() {
        assert_eq!(decimal_digits(b"-123.45", 2).as_deref(), Some("-12345"));
        assert_eq!(decimal_i128(b"-123.45", 2), Some(-12345));
        assert_eq!(decimal_i128(b"000003.50", 2), Some(350));
        assert_eq!(decimal_i128(b"-0.50", 2), Some(-50));
        assert_eq!(decimal_i128(b"7", 0), Some(7));
        assert_eq!(decimal_i128(b"7.1", 2), None);
        assert_eq!(decimal_digits(b"000003.50", 2).as_deref(), Some("350"));
        assert_eq!(decimal_digits(b"7", 0).as_deref(), Some("7"));
        assert_eq!(datetime_micros(b"1970-01-01 00:00:01.5"), Some(1_500_000));
        assert_eq!(datetime_micros(b"0000-00-00 00:00:00"), None);
        assert_eq!(date_days(b"1970-01-02"), 1);
        // Integers from their bytes, as `str::parse` reads MySQL's text.
        for t in [
            "0",
            "-0",
            "42",
            "0042",
            "-42",
            "127",
            "128",
            "-128",
            "-129",
            "255",
            "256",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775808",
            "18446744073709551615",
            "18446744073709551616",
            "0000000000000000000000000000000000000000007",
            "",
            "-",
            "1.5",
            "abc",
            "1e3",
            " 1",
            "99999999999999999999999999999999999999999",
        ] {
            let b = t.as_bytes();
            assert_eq!(int_cell::<i8>(b), unpad(b).parse::<i8>().ok(), "{t}");
            assert_eq!(int_cell::<u8>(b), unpad(b).parse::<u8>().ok(), "{t}");
            assert_eq!(int_cell::<i64>(b), unpad(b).parse::<i64>().ok(), "{t}");
            assert_eq!(int_cell::<u64>(b), unpad(b).parse::<u64>().ok(), "{t}");
        }
        assert_eq!(unpad(b"0042"), "42");
        assert_eq!(unpad(b"0000"), "0");
        assert_eq!(unpad(b"0.5"), "0.5");
        assert_eq!(unpad(b""), "", "no panic on an empty cell");
    }

    #[test]
    fn types() {
        assert_eq!(
            arrow_type(&ColumnKind::Decimal {
                precision: 65,
                scale: 30
            }),
            DataType::Decimal256(65, 30)
        );
        assert_eq!(
            arrow_type(&ColumnKind::Integer {
                width: IntWidth::Big,
                unsigned: true
            }),
            DataType::UInt64
        );
    }
}
