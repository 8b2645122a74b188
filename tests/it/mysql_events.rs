//! MySQL-only binlog paths on events built here byte by byte, from MySQL's documentation of the
//! binary log (https://dev.mysql.com/doc/dev/mysql-server/latest/: the replication event formats
//! of libbinlogevents, and json_binary.h for binary JSON): FORMAT_DESCRIPTION_EVENT,
//! PREVIOUS_GTIDS_LOG_EVENT, GTID_LOG_EVENT, ANONYMOUS_GTID_LOG_EVENT, QUERY_EVENT, TABLE_MAP_EVENT,
//! WRITE_ROWS_EVENT (v2) with a JSON column, XID_EVENT and TRANSACTION_PAYLOAD_EVENT.
//!
//! No MySQL server and no recorded file is needed, so these run on any clone (`recorded.rs` runs
//! the same paths on real recordings where the shared folder is). The events go through the
//! driver's parser as in production, then through the same code of ours as the binlog reader: GTID
//! sets and positions, `text_bytes` and the JSON encoder for row values, and `refused_event`.

use std::io::Cursor;

use mysql_common::binlog::consts::{BinlogVersion, TransactionPayloadCompressionType};
use mysql_common::binlog::events::{Event, EventData, RowsEventData, TableMapEvent};
use mysql_common::binlog::{BinlogFile, EventStreamReader};
use tap_mysql::testing::{
    encode_cell, refused_event, text_bytes, uuid_text, ColumnDecoding, ColumnKind, ColumnWarnings,
    Encoder, Flavor, GtidState, IntWidth, MysqlGtidSet, TxnGtid, TypeOptions,
};

// ---------------------------------------------------------------------------------------------
// Events, as a MySQL 8.0 server writes them (binlog version 4, CRC32 checksums).

/// Log_event_type codes.
const QUERY_EVENT: u8 = 2;
const FORMAT_DESCRIPTION_EVENT: u8 = 15;
const XID_EVENT: u8 = 16;
const TABLE_MAP_EVENT: u8 = 19;
const WRITE_ROWS_EVENT: u8 = 30;
const GTID_LOG_EVENT: u8 = 33;
const ANONYMOUS_GTID_LOG_EVENT: u8 = 34;
const PREVIOUS_GTIDS_LOG_EVENT: u8 = 35;
const TRANSACTION_PAYLOAD_EVENT: u8 = 40;

/// The post-header length of event types 1 to 41, in the order a MySQL 8.0 format description
/// event lists them.
const POST_HEADER_LENGTHS: [u8; 41] = [
    0,  // 1 START_EVENT_V3 (obsolete)
    13, // 2 QUERY_EVENT
    0,  // 3 STOP_EVENT
    8,  // 4 ROTATE_EVENT
    0,  // 5 INTVAR_EVENT
    0, 0, 0,  // 6-8 obsolete
    4,  // 9 APPEND_BLOCK_EVENT
    0,  // 10 obsolete
    4,  // 11 DELETE_FILE_EVENT
    0,  // 12 obsolete
    0,  // 13 RAND_EVENT
    0,  // 14 USER_VAR_EVENT
    98, // 15 FORMAT_DESCRIPTION_EVENT: 2 + 50 + 4 + 1 + 41
    0,  // 16 XID_EVENT
    4,  // 17 BEGIN_LOAD_QUERY_EVENT
    26, // 18 EXECUTE_LOAD_QUERY_EVENT
    8,  // 19 TABLE_MAP_EVENT
    0, 0, 0, // 20-22 obsolete rows events
    8, 8, 8, // 23-25 rows events v1
    2, // 26 INCIDENT_EVENT
    0, // 27 HEARTBEAT_LOG_EVENT
    0, // 28 IGNORABLE_LOG_EVENT
    0, // 29 ROWS_QUERY_LOG_EVENT
    10, 10, 10, // 30-32 rows events v2
    42, // 33 GTID_LOG_EVENT
    42, // 34 ANONYMOUS_GTID_LOG_EVENT
    0,  // 35 PREVIOUS_GTIDS_LOG_EVENT
    18, // 36 TRANSACTION_CONTEXT_EVENT
    52, // 37 VIEW_CHANGE_EVENT
    0,  // 38 XA_PREPARE_LOG_EVENT
    10, // 39 PARTIAL_UPDATE_ROWS_EVENT
    40, // 40 TRANSACTION_PAYLOAD_EVENT
    0,  // 41 HEARTBEAT_LOG_EVENT_V2
];

const TIMESTAMP: u32 = 1_700_000_000;
const SERVER_ID: u32 = 1;

/// CRC-32 (ISO-HDLC, as zlib's crc32), the binlog checksum.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A packed ("length-encoded") integer.
fn packed(n: u64) -> Vec<u8> {
    match n {
        0..=250 => vec![n as u8],
        251..=0xffff => [&[0xfc][..], &(n as u16).to_le_bytes()].concat(),
        0x1_0000..=0xff_ffff => [&[0xfd][..], &(n as u32).to_le_bytes()[..3]].concat(),
        _ => [&[0xfe][..], &n.to_le_bytes()].concat(),
    }
}

/// A binlog file being written: the magic number, then events.
struct Binlog {
    bytes: Vec<u8>,
}

impl Binlog {
    /// A file that starts with a format description event (MySQL 8.0.36, CRC32 checksums).
    fn new() -> Binlog {
        let mut b = Binlog {
            bytes: b"\xfebin".to_vec(),
        };
        let mut body = Vec::new();
        body.extend(4u16.to_le_bytes()); // binlog version
        let mut version = b"8.0.36".to_vec();
        version.resize(50, 0);
        body.extend(version);
        body.extend(TIMESTAMP.to_le_bytes()); // create timestamp
        body.push(19); // common header length
        body.extend(POST_HEADER_LENGTHS);
        body.push(1); // checksum algorithm: CRC32
        b.event(FORMAT_DESCRIPTION_EVENT, 0, &body);
        b
    }

    /// Appends an event: the 19-byte common header, `body`, the CRC32 of both.
    fn event(&mut self, type_code: u8, flags: u16, body: &[u8]) {
        let size = 19 + body.len() + 4;
        let next = self.bytes.len() + size;
        let start = self.bytes.len();
        self.bytes
            .extend(header(type_code, size, next as u32, flags));
        self.bytes.extend(body);
        let crc = crc32(&self.bytes[start..]);
        self.bytes.extend(crc.to_le_bytes());
    }

    /// The events, read back by the driver as the tap's reader gets them.
    fn events(&self) -> Vec<Event> {
        BinlogFile::new(BinlogVersion::Version4, Cursor::new(&self.bytes))
            .expect("a binlog file")
            .map(|e| e.expect("an event"))
            .collect()
    }
}

/// The common event header.
fn header(type_code: u8, size: usize, log_pos: u32, flags: u16) -> Vec<u8> {
    let mut h = Vec::with_capacity(19);
    h.extend(TIMESTAMP.to_le_bytes());
    h.push(type_code);
    h.extend(SERVER_ID.to_le_bytes());
    h.extend((size as u32).to_le_bytes());
    h.extend(log_pos.to_le_bytes());
    h.extend(flags.to_le_bytes());
    h
}

/// A server UUID's 16 bytes, in the order it is written.
fn uuid_bytes(text: &str) -> [u8; 16] {
    let hex: String = text.chars().filter(|c| *c != '-').collect();
    let mut b = [0u8; 16];
    for (i, byte) in b.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap();
    }
    b
}

/// PREVIOUS_GTIDS_LOG_EVENT body: the number of SIDs (8 bytes), then per SID its UUID, the
/// number of intervals (8 bytes) and each interval as start and end (8 bytes each, the end
/// exclusive).
fn previous_gtids(sids: &[(&str, &[(u64, u64)])]) -> Vec<u8> {
    let mut body = (sids.len() as u64).to_le_bytes().to_vec();
    for (uuid, intervals) in sids {
        body.extend(uuid_bytes(uuid));
        body.extend((intervals.len() as u64).to_le_bytes());
        for (start, end_exclusive) in *intervals {
            body.extend(start.to_le_bytes());
            body.extend(end_exclusive.to_le_bytes());
        }
    }
    body
}

/// What a GTID event says besides the GTID (the MySQL 8.0 fields).
struct GtidFields {
    last_committed: u64,
    sequence_number: u64,
    /// Microseconds since the epoch (56 bits).
    immediate_commit_us: u64,
    /// Differs from the immediate one on a replica.
    original_commit_us: u64,
    /// Bytes of the whole transaction, this event included.
    transaction_length: u64,
    /// e.g. 80036 for 8.0.36.
    server_version: u32,
}

/// GTID_LOG_EVENT / ANONYMOUS_GTID_LOG_EVENT body: the 42-byte post-header (flags, SID, GNO,
/// logical clock type code 2, last_committed, sequence_number), then the commit timestamps
/// (7 bytes each; the immediate one has bit 55 set when the original one follows), the
/// transaction length (packed) and the server versions (4 bytes each; bit 31 set when the
/// original one follows).
fn gtid_body(uuid: &str, gno: u64, f: &GtidFields) -> Vec<u8> {
    let mut body = vec![0x00]; // flags: no statement-based changes
    body.extend(uuid_bytes(uuid));
    body.extend(gno.to_le_bytes());
    body.push(2);
    body.extend(f.last_committed.to_le_bytes());
    body.extend(f.sequence_number.to_le_bytes());
    let two = f.original_commit_us != f.immediate_commit_us;
    let immediate = f.immediate_commit_us | if two { 1 << 55 } else { 0 };
    body.extend(&immediate.to_le_bytes()[..7]);
    if two {
        body.extend(&f.original_commit_us.to_le_bytes()[..7]);
    }
    body.extend(packed(f.transaction_length));
    body.extend(f.server_version.to_le_bytes());
    body
}

/// The GTID event body of the `seq`th transaction (a replica's: the original commit time
/// differs), whose transaction length counts the event itself and `rest_len` bytes of events
/// that follow.
fn gtid_event(uuid: &str, gno: u64, seq: u64, rest_len: usize) -> Vec<u8> {
    let mut fields = GtidFields {
        last_committed: seq - 1,
        sequence_number: seq,
        immediate_commit_us: 1_700_000_000_123_456 + seq,
        original_commit_us: 1_700_000_000_000_001 + seq,
        transaction_length: 0,
        server_version: 80036,
    };
    // The length is packed, so its own size is part of what it counts: settle it.
    for _ in 0..2 {
        fields.transaction_length =
            (19 + gtid_body(uuid, gno, &fields).len() + 4 + rest_len) as u64;
    }
    gtid_body(uuid, gno, &fields)
}

/// QUERY_EVENT body: thread id, execution time, schema length, error code, status variables
/// length (none here), the schema and a 0 byte, the statement.
fn query(schema: &str, sql: &str) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(42u32.to_le_bytes());
    body.extend(0u32.to_le_bytes());
    body.push(schema.len() as u8);
    body.extend(0u16.to_le_bytes());
    body.extend(0u16.to_le_bytes());
    body.extend(schema.as_bytes());
    body.push(0);
    body.extend(sql.as_bytes());
    body
}

/// The table of these tests: `shop.docs (id INT NOT NULL, n INT UNSIGNED NOT NULL, doc JSON)`.
const TABLE_ID: u64 = 108;

/// TABLE_MAP_EVENT body: table id (6 bytes), flags, schema and table names (length byte, name,
/// 0 byte), column count (packed), column types, metadata (packed length, then per column: JSON
/// has one byte, the size of its length prefix), the nullable-columns bitmap. No optional
/// metadata (binlog_row_metadata=MINIMAL without signedness: INT UNSIGNED arrives as signed).
fn table_map() -> Vec<u8> {
    let mut body = TABLE_ID.to_le_bytes()[..6].to_vec();
    body.extend(1u16.to_le_bytes());
    for name in ["shop", "docs"] {
        body.push(name.len() as u8);
        body.extend(name.as_bytes());
        body.push(0);
    }
    body.extend(packed(3));
    body.extend([3, 3, 245]); // MYSQL_TYPE_LONG, MYSQL_TYPE_LONG, MYSQL_TYPE_JSON
    body.extend(packed(1));
    body.push(4);
    body.push(0b100); // doc is nullable
    body
}

/// WRITE_ROWS_EVENT (v2) body: table id, flags (STMT_END_F), the extra-data length (2: none),
/// column count, the columns-present bitmap, then per row its NULL bitmap and values: INT as
/// 4 bytes, JSON as a 4-byte length and the binary document.
fn write_rows(rows: &[(i32, u32, Option<Vec<u8>>)]) -> Vec<u8> {
    let mut body = TABLE_ID.to_le_bytes()[..6].to_vec();
    body.extend(1u16.to_le_bytes());
    body.extend(2u16.to_le_bytes());
    body.extend(packed(3));
    body.push(0b111);
    for (id, n, doc) in rows {
        body.push(if doc.is_none() { 0b100 } else { 0 });
        body.extend(id.to_le_bytes());
        body.extend(n.to_le_bytes());
        if let Some(doc) = doc {
            body.extend((doc.len() as u32).to_le_bytes());
            body.extend(doc);
        }
    }
    body
}

/// XID_EVENT body: the transaction id.
fn xid(id: u64) -> Vec<u8> {
    id.to_le_bytes().to_vec()
}

// ---------------------------------------------------------------------------------------------
// Binary JSON (json_binary.h).

/// A JSON value for the binary encoder, by the type it is stored as.
enum J {
    Null,
    True,
    False,
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    Double(f64),
    Str(String),
    /// A small object; keys in the order MySQL stores them (by length, then bytewise).
    Object(Vec<(&'static str, J)>),
    Array(Vec<J>),
    /// An array in the large format (4-byte offsets and counts).
    LargeArray(Vec<J>),
    /// A value of a MySQL type JSON has no type for, e.g. a DECIMAL: the field type and its
    /// binary form.
    Opaque(u8, Vec<u8>),
}

impl J {
    fn type_code(&self) -> u8 {
        match self {
            J::Object(_) => 0x00,
            J::Array(_) => 0x02,
            J::LargeArray(_) => 0x03,
            J::Null | J::True | J::False => 0x04,
            J::I16(_) => 0x05,
            J::U16(_) => 0x06,
            J::I32(_) => 0x07,
            J::U32(_) => 0x08,
            J::I64(_) => 0x09,
            J::U64(_) => 0x0a,
            J::Double(_) => 0x0b,
            J::Str(_) => 0x0c,
            J::Opaque(..) => 0x0f,
        }
    }

    /// Stored in the value entry of its object or array rather than after the entries:
    /// literals and 16-bit integers, and 32-bit integers in the large format.
    fn inlined(&self, large: bool) -> bool {
        match self {
            J::Null | J::True | J::False | J::I16(_) | J::U16(_) => true,
            J::I32(_) | J::U32(_) => large,
            _ => false,
        }
    }

    /// The value's bytes, without its type code.
    fn value(&self) -> Vec<u8> {
        match self {
            J::Null => vec![0x00],
            J::True => vec![0x01],
            J::False => vec![0x02],
            J::I16(v) => v.to_le_bytes().to_vec(),
            J::U16(v) => v.to_le_bytes().to_vec(),
            J::I32(v) => v.to_le_bytes().to_vec(),
            J::U32(v) => v.to_le_bytes().to_vec(),
            J::I64(v) => v.to_le_bytes().to_vec(),
            J::U64(v) => v.to_le_bytes().to_vec(),
            J::Double(v) => v.to_le_bytes().to_vec(),
            J::Str(s) => [var_len(s.len()), s.clone().into_bytes()].concat(),
            J::Object(members) => {
                for pair in members.windows(2) {
                    let (a, b) = (pair[0].0, pair[1].0);
                    assert!(
                        (a.len(), a) < (b.len(), b),
                        "keys in MySQL's order: {a:?} before {b:?}"
                    );
                }
                let keys: Vec<&str> = members.iter().map(|(k, _)| *k).collect();
                let values: Vec<&J> = members.iter().map(|(_, v)| v).collect();
                container(false, &keys, &values)
            }
            J::Array(items) => container(false, &[], &items.iter().collect::<Vec<_>>()),
            J::LargeArray(items) => container(true, &[], &items.iter().collect::<Vec<_>>()),
            J::Opaque(field_type, data) => {
                [vec![*field_type], var_len(data.len()), data.clone()].concat()
            }
        }
    }
}

/// A whole document: type code, then value.
fn doc(j: &J) -> Vec<u8> {
    [vec![j.type_code()], j.value()].concat()
}

/// A length of 7 bits per byte, lowest first, the high bit set on all but the last byte.
fn var_len(mut n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(low);
            return out;
        }
        out.push(low | 0x80);
    }
}

/// An object (with keys) or array: element count and total size (2 bytes each, 4 in the large
/// format), the key entries (offset, 2-byte length), the value entries (type code, then the
/// inlined value or the offset of the value), the keys, the values. Offsets count from the start
/// of the element count.
fn container(large: bool, keys: &[&str], values: &[&J]) -> Vec<u8> {
    let width = if large { 4 } else { 2 };
    let put = |out: &mut Vec<u8>, n: usize| out.extend(&(n as u32).to_le_bytes()[..width]);
    let entries_end = 2 * width + keys.len() * (width + 2) + values.len() * (1 + width);
    let mut tail = Vec::new();
    let mut key_entries = Vec::new();
    for k in keys {
        put(&mut key_entries, entries_end + tail.len());
        key_entries.extend((k.len() as u16).to_le_bytes());
        tail.extend(k.as_bytes());
    }
    let mut value_entries = Vec::new();
    for v in values {
        value_entries.push(v.type_code());
        if v.inlined(large) {
            let mut inline = v.value();
            inline.resize(width, 0);
            value_entries.extend(inline);
        } else {
            put(&mut value_entries, entries_end + tail.len());
            tail.extend(v.value());
        }
    }
    let mut out = Vec::new();
    put(&mut out, values.len());
    put(&mut out, entries_end + tail.len());
    out.extend(key_entries);
    out.extend(value_entries);
    out.extend(tail);
    out
}

// ---------------------------------------------------------------------------------------------
// Through our code.

/// A column as the reader decodes it.
fn column(kind: ColumnKind) -> ColumnDecoding {
    ColumnDecoding {
        kind,
        charset: None,
        fixed_binary_len: None,
    }
}

/// The columns of `shop.docs`, as discovery describes them.
fn docs_columns() -> [ColumnDecoding; 3] {
    [
        column(ColumnKind::Integer {
            width: IntWidth::Int,
            unsigned: false,
        }),
        column(ColumnKind::Integer {
            width: IntWidth::Int,
            unsigned: true,
        }),
        column(ColumnKind::Json),
    ]
}

/// The JSON text of each cell of each row of a rows event, as it goes into a RECORD: the
/// reader's `text_bytes`, then the column's encoder.
fn record_cells(
    rows: &RowsEventData<'_>,
    tme: &TableMapEvent<'_>,
    columns: &[ColumnDecoding],
) -> Vec<Vec<String>> {
    rows.rows(tme)
        .map(|row| {
            let (_, after) = row.expect("a row");
            let after = after.expect("an after image");
            columns
                .iter()
                .enumerate()
                .map(|(i, col)| {
                    let value = after.as_ref(i).expect("a value");
                    let text = text_bytes(col, value).expect("decodes");
                    let encoder = Encoder::for_kind(&col.kind, &TypeOptions::default()).unwrap();
                    let mut out = Vec::new();
                    let mut warnings = ColumnWarnings::default();
                    encode_cell(encoder, text.as_deref(), &mut out, &mut warnings);
                    assert!(!warnings.any(), "{}", warnings.describe());
                    String::from_utf8(out).unwrap()
                })
                .collect()
        })
        .collect()
}

/// The JSON texts of the rows events of `events` (after their table map).
fn rows_of(events: &[Event]) -> Vec<Vec<String>> {
    let mut tme = None;
    let mut cells = Vec::new();
    for ev in events {
        match ev.read_data().expect("event data") {
            Some(EventData::TableMapEvent(t)) => tme = Some(t.into_owned()),
            Some(EventData::RowsEvent(rows)) => cells.extend(record_cells(
                &rows,
                tme.as_ref().expect("a table map first"),
                &docs_columns(),
            )),
            _ => {}
        }
    }
    cells
}

const SOURCE: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const OTHER: &str = "5e6a8d0c-9f3b-11ee-8c90-0242ac120002";

/// `{"a": 1}`, written out by hand from json_binary.h, pins the encoder above.
#[test]
fn binary_json_encoder_matches_the_documented_layout() {
    let by_hand = [
        0x00, // small object
        0x01, 0x00, // one member
        0x0c, 0x00, // 12 bytes from the member count on
        0x0b, 0x00, 0x01, 0x00, // key entry: key at offset 11, 1 byte long
        0x05, 0x01, 0x00, // value entry: int16 1, inlined
        b'a', // the key
    ];
    assert_eq!(doc(&J::Object(vec![("a", J::I16(1))])), by_hand);
    assert_eq!(var_len(127), [0x7f]);
    assert_eq!(var_len(300), [0xac, 0x02]);
}

/// A transaction: GTID (or anonymous GTID) event, BEGIN, table map, rows, XID. The GTID
/// event's transaction length counts every byte of it.
fn transaction(
    b: &mut Binlog,
    gtid: Option<(&str, u64)>,
    seq: u64,
    rows: &[(i32, u32, Option<Vec<u8>>)],
) {
    let rest: [(u8, u16, Vec<u8>); 4] = [
        (QUERY_EVENT, 8, query("shop", "BEGIN")),
        (TABLE_MAP_EVENT, 0, table_map()),
        (WRITE_ROWS_EVENT, 0, write_rows(rows)),
        (XID_EVENT, 0, xid(seq + 1000)),
    ];
    let rest_len: usize = rest.iter().map(|(_, _, body)| 19 + body.len() + 4).sum();
    let (type_code, uuid, gno) = match gtid {
        Some((uuid, gno)) => (GTID_LOG_EVENT, uuid, gno),
        None => (
            ANONYMOUS_GTID_LOG_EVENT,
            "00000000-0000-0000-0000-000000000000",
            0,
        ),
    };
    b.event(type_code, 0, &gtid_event(uuid, gno, seq, rest_len));
    for (type_code, flags, body) in rest {
        b.event(type_code, flags, &body);
    }
}

/// One row with a small JSON document: `(id, 1, {"k": id})`.
fn one_row(id: i32) -> Vec<(i32, u32, Option<Vec<u8>>)> {
    vec![(id, 1, Some(doc(&J::Object(vec![("k", J::U16(id as u16))]))))]
}

#[test]
fn gtid_and_previous_gtids_events_build_the_servers_gtid_set() {
    let mut b = Binlog::new();
    b.event(
        PREVIOUS_GTIDS_LOG_EVENT,
        0x80, // LOG_EVENT_IGNORABLE_F
        &previous_gtids(&[(SOURCE, &[(1, 6)]), (OTHER, &[(1, 4), (5, 10)])]),
    );
    transaction(&mut b, Some((SOURCE, 6)), 1, &one_row(1));
    transaction(&mut b, Some((OTHER, 4)), 2, &one_row(2));
    let events = b.events();

    // Every event ends where the next begins, as its header says.
    let mut at = 4;
    for ev in &events {
        at += ev.header().event_size() as u64;
        assert_eq!(ev.header().log_pos() as u64, at);
    }
    assert_eq!(at, b.bytes.len() as u64);

    let mut previous = None;
    let mut state = None;
    let mut gtids = Vec::new();
    for ev in &events {
        assert_eq!(refused_event(ev.header().event_type_raw()), None);
        match ev.read_data().expect("event data") {
            Some(EventData::PreviousGtidsEvent(p)) => {
                let mut set = MysqlGtidSet::default();
                for sid in p.sids() {
                    for interval in sid.intervals() {
                        for gno in interval.start()..interval.end() {
                            set.add(&uuid_text(&sid.uuid()), "", gno);
                        }
                    }
                }
                state = Some(GtidState::parse(Flavor::Mysql, &set.to_string()).unwrap());
                previous = Some(set);
            }
            Some(EventData::GtidEvent(g)) => {
                // As the reader takes a transaction's GTID.
                let t = TxnGtid::Mysql {
                    uuid: uuid_text(&g.sid()),
                    tag: g.tag().map(|t| t.as_str().to_string()).unwrap_or_default(),
                    gno: g.gno(),
                };
                let state = state.as_mut().expect("previous GTIDs first");
                assert!(!state.contains(&t), "{t:?} is new");
                state.add(&t);
                assert!(state.contains(&t));
                gtids.push(g);
            }
            _ => {}
        }
    }
    let previous = previous.expect("a previous-GTIDs event");
    assert_eq!(
        previous.to_string(),
        format!("{SOURCE}:1-5,{OTHER}:1-3:5-9")
    );
    assert_eq!(
        MysqlGtidSet::parse(&previous.to_string()).unwrap(),
        previous
    );
    let state = state.unwrap();
    assert_eq!(
        state.text().as_deref(),
        Some(format!("{SOURCE}:1-6,{OTHER}:1-9").as_str()),
        "the second transaction fills the gap"
    );
    assert!(state.contains_all(&GtidState::Mysql(previous)));

    // The rest of the GTID event, as written.
    assert_eq!(gtids.len(), 2);
    let g = &gtids[0];
    assert_eq!((g.last_committed(), g.sequence_number()), (0, 1));
    assert_eq!(g.immediate_commit_timestamp(), 1_700_000_000_123_457);
    assert_eq!(g.original_commit_timestamp(), 1_700_000_000_000_002);
    assert_eq!(g.immediate_server_version(), 80036);
    let first_txn: u64 = events[2..7]
        .iter()
        .map(|e| e.header().event_size() as u64)
        .sum();
    assert_eq!(g.tx_length(), first_txn);

    // The rows of both transactions.
    assert_eq!(
        rows_of(&events),
        vec![
            vec!["1".to_string(), "1".into(), r#"{"k":1}"#.into()],
            vec!["2".to_string(), "1".into(), r#"{"k":2}"#.into()],
        ]
    );
}

#[test]
fn json_documents_in_a_write_rows_event_decode_to_their_json_text() {
    let every_type = J::Object(vec![
        ("a", J::I16(1)),
        ("b", J::Array(vec![J::True, J::False, J::Null])),
        ("big", J::U64(u64::MAX)),
        ("neg", J::I64(-9_000_000_000)),
        ("half", J::Double(2.5)),
        ("text", J::Str("é \"q\"\n".into())),
        ("int32", J::I32(-70_000)),
        ("nested", J::Object(vec![("k", J::Array(vec![]))])),
        ("uint32", J::U32(4_000_000_000)),
    ]);
    let long = "x".repeat(300); // a string whose length takes two bytes
    let mut b = Binlog::new();
    b.event(PREVIOUS_GTIDS_LOG_EVENT, 0x80, &previous_gtids(&[]));
    transaction(
        &mut b,
        Some((SOURCE, 1)),
        1,
        &[
            (1, 4_294_967_295, Some(doc(&every_type))),
            (
                2,
                0,
                Some(doc(&J::LargeArray(vec![
                    J::I32(7),
                    J::Str("x".into()),
                    J::Object(vec![]),
                    J::U16(65535),
                ]))),
            ),
            (3, 7, Some(doc(&J::Str(long.clone())))),
            (4, 8, Some(doc(&J::Null))),
            (-5, 9, None),
        ],
    );
    let cells = rows_of(&b.events());
    // Our text for MySQL's `{"a": 1, "b": [true, false, null], "big": 18446744073709551615,
    // "neg": -9000000000, "half": 2.5, "text": "é \"q\"\n", "int32": -70000, "nested": {"k": []},
    // "uint32": 4000000000}`: the same document, compact, keys in byte order.
    let every_type_text = r#"{"a":1,"b":[true,false,null],"big":18446744073709551615,"half":2.5,"int32":-70000,"neg":-9000000000,"nested":{"k":[]},"text":"é \"q\"\n","uint32":4000000000}"#;
    assert_eq!(
        cells,
        vec![
            vec!["1".to_string(), "4294967295".into(), every_type_text.into()],
            vec!["2".to_string(), "0".into(), r#"[7,"x",{},65535]"#.into()],
            vec!["3".to_string(), "7".into(), format!("\"{long}\"")],
            vec!["4".to_string(), "8".into(), "null".into()],
            vec!["-5".to_string(), "9".into(), "null".into()],
        ]
    );
    let mysql_prints: serde_json::Value = serde_json::from_str(
        r#"{"a": 1, "b": [true, false, null], "big": 18446744073709551615, "neg": -9000000000, "half": 2.5, "text": "é \"q\"\n", "int32": -70000, "nested": {"k": []}, "uint32": 4000000000}"#,
    )
    .unwrap();
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(every_type_text).unwrap(),
        mysql_prints
    );
}

/// MySQL stores a DECIMAL inside JSON (`JSON_OBJECT('price', 9.99)` from a DECIMAL column) as an
/// opaque value: field type 246, then precision, scale and the decimal's binary form. MySQL
/// prints it as the number `9.99`, as the snapshot reads it.
#[test]
fn a_decimal_inside_json_is_a_number_as_mysql_prints_it() {
    // 9.99 as DECIMAL(3,2): one integer digit (1 byte), two fraction digits (1 byte), the sign
    // bit of the first byte set for a positive number.
    let price = J::Opaque(246, vec![3, 2, 0x80 | 9, 99]);
    let mut b = Binlog::new();
    b.event(PREVIOUS_GTIDS_LOG_EVENT, 0x80, &previous_gtids(&[]));
    transaction(
        &mut b,
        Some((SOURCE, 1)),
        1,
        &[(1, 1, Some(doc(&J::Object(vec![("price", price)]))))],
    );
    assert_eq!(rows_of(&b.events())[0][2], r#"{"price":9.99}"#);
}

#[test]
fn anonymous_transactions_carry_no_gtid_and_their_rows_decode() {
    // gtid_mode=OFF: an empty previous-GTIDs event, anonymous GTID events.
    let mut b = Binlog::new();
    b.event(PREVIOUS_GTIDS_LOG_EVENT, 0x80, &previous_gtids(&[]));
    transaction(&mut b, None, 1, &one_row(1));
    let events = b.events();
    let mut anonymous = 0;
    for ev in &events {
        assert_eq!(refused_event(ev.header().event_type_raw()), None);
        match ev.read_data().expect("event data") {
            Some(EventData::PreviousGtidsEvent(p)) => assert!(p.sids().is_empty()),
            Some(EventData::AnonymousGtidEvent(a)) => {
                assert_eq!((a.0.gno(), a.0.sid()), (0, [0; 16]));
                anonymous += 1;
            }
            Some(EventData::GtidEvent(g)) => panic!("no GTID expected: {g:?}"),
            _ => {}
        }
    }
    assert_eq!(anonymous, 1);
    assert_eq!(GtidState::parse(Flavor::Mysql, "").unwrap().text(), None);
    assert_eq!(
        rows_of(&events),
        vec![vec!["1".to_string(), "1".into(), r#"{"k":1}"#.into()]]
    );
}

/// TRANSACTION_PAYLOAD_EVENT body: fields as (type, length, value), each packed: compression
/// type (2), uncompressed size (3), payload size (1), then the end mark (0) and the payload, the
/// transaction's events without checksums. Compression type 255 (none) keeps it readable here;
/// MySQL writes 0 (zstd).
fn transaction_payload(events: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for (field, value) in [
        (2u64, 255u64),
        (3, events.len() as u64),
        (1, events.len() as u64),
    ] {
        body.extend(packed(field));
        body.extend(packed(packed(value).len() as u64));
        body.extend(packed(value));
    }
    body.push(0);
    body.extend(events);
    body
}

#[test]
fn compressed_transactions_are_refused_not_skipped() {
    // binlog_transaction_compression=ON: the GTID event, then one payload event holding the
    // transaction (MySQL leaves the BEGIN out of it).
    let mut inner = Vec::new();
    for (type_code, body) in [
        (TABLE_MAP_EVENT, table_map()),
        (WRITE_ROWS_EVENT, write_rows(&one_row(1))),
        (XID_EVENT, xid(1001)),
    ] {
        inner.extend(header(type_code, 19 + body.len(), 0, 0));
        inner.extend(body);
    }
    let mut b = Binlog::new();
    b.event(PREVIOUS_GTIDS_LOG_EVENT, 0x80, &previous_gtids(&[]));
    let payload = transaction_payload(&inner);
    b.event(
        GTID_LOG_EVENT,
        0,
        &gtid_event(SOURCE, 1, 1, 19 + payload.len() + 4),
    );
    b.event(TRANSACTION_PAYLOAD_EVENT, 0, &payload);

    let mut reader = EventStreamReader::new(BinlogVersion::Version4);
    let mut input = Cursor::new(&b.bytes[4..]);
    let mut refused = Vec::new();
    let mut inside = Vec::new();
    while let Some(ev) = reader.read(&mut input).expect("an event") {
        let raw = ev.header().event_type_raw();
        if let Some(why) = refused_event(raw) {
            refused.push(why);
            let Some(EventData::TransactionPayloadEvent(p)) = ev.read_data().unwrap() else {
                panic!("type {raw} is a transaction payload event");
            };
            assert_eq!(p.algorithm(), TransactionPayloadCompressionType::NONE);
            assert_eq!(p.uncompressed_size(), inner.len() as u64);
            let mut events = p.decompressed().unwrap();
            while let Some(e) = reader.read_decompressed(&mut events).unwrap() {
                inside.push(e);
            }
        } else {
            assert_ne!(raw, TRANSACTION_PAYLOAD_EVENT);
        }
    }
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(
        refused[0].contains("binlog_transaction_compression"),
        "{}",
        refused[0]
    );
    // What skipping it would lose: the transaction's rows.
    assert_eq!(
        rows_of(&inside),
        vec![vec!["1".to_string(), "1".into(), r#"{"k":1}"#.into()]]
    );
}
