//! Result rows of a text-protocol query, read without a driver `Row` per row.
//!
//! The driver turns every row into a `Row` that owns one `Vec<u8>` per cell: for a table of a
//! dozen columns that is more allocator work than everything else the tap does with the row
//! (the profile in the README's Speed section). On a plain connection (no TLS, no protocol
//! compression) [`Rows`] therefore sends the query and reads the result's packets itself, from
//! a duplicate of the connection's socket, into one reusable buffer; a row is the packet's
//! bytes plus the offsets of its cells. On any other connection it reads through the driver.
//! Either way the caller sees the same [`Cells`].
//!
//! Promises:
//! - Every byte a cell holds is exactly what the driver would have given (the same packets,
//!   the same length-encoded cells); NULL is `None`.
//! - The driver's connection is left as the driver expects it: the whole result, through its
//!   terminating packet, is consumed before [`Rows::next`] returns `None`. A reader dropped
//!   before that shuts the socket down, so the connection can never be used out of step: its
//!   next use fails as a lost connection.
//! - A server error inside the result (a killed query, a timeout) is the server's error, a
//!   closed or failing socket an I/O error, a malformed packet an `InvalidData` I/O error,
//!   all as `mysql::Error`, so callers classify them as they classify the driver's.
//! - Memory: one buffer that grows to the largest packet read (at most 16 MiB); a row of
//!   16 MiB or more is assembled in a second buffer.

use std::io::{self, Read, Write};
use std::net::TcpStream;

use mysql::prelude::Queryable;
use mysql::{Conn, Row};

/// The cells of one row, by column index.
pub(crate) trait Cells {
    /// The bytes of cell `i` as the server printed them; `None` for NULL (or no such cell).
    fn cell(&self, i: usize) -> Option<&[u8]>;
}

impl Cells for Row {
    #[inline]
    fn cell(&self, i: usize) -> Option<&[u8]> {
        match self.as_ref(i) {
            Some(mysql::Value::Bytes(b)) => Some(b.as_slice()),
            _ => None,
        }
    }
}

/// Where a cell lies in its row packet; `start == NULL_CELL` is SQL NULL.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Span {
    start: u32,
    len: u32,
}

const NULL_CELL: u32 = u32::MAX;
/// A packet payload of this length continues in the next packet.
const MAX_PAYLOAD: usize = 0xff_ff_ff;
/// The read buffer's starting size.
const READ_BUFFER: usize = 256 * 1024;
/// `SERVER_MORE_RESULTS_EXISTS` in a terminator's status flags.
const MORE_RESULTS: u16 = 0x0008;

/// A row borrowed from a reader: valid until the reader's next call.
pub(crate) enum RowRef<'a> {
    /// A row packet read from the socket, and its cells.
    Wire(&'a [u8], &'a [Span]),
    /// A row the driver read.
    Driver(&'a Row),
}

impl Cells for RowRef<'_> {
    #[inline]
    fn cell(&self, i: usize) -> Option<&[u8]> {
        match self {
            RowRef::Wire(packet, spans) => span_bytes(packet, spans.get(i)?),
            RowRef::Driver(row) => row.cell(i),
        }
    }
}

#[inline]
fn span_bytes<'a>(packet: &'a [u8], s: &Span) -> Option<&'a [u8]> {
    if s.start == NULL_CELL {
        return None;
    }
    packet.get(s.start as usize..(s.start + s.len) as usize)
}

/// A row kept after its reader moved on (the last row of a read, for its bookmark).
#[derive(Clone, Debug)]
pub(crate) struct OwnedRow {
    packet: Vec<u8>,
    spans: Vec<Span>,
}

impl Cells for OwnedRow {
    fn cell(&self, i: usize) -> Option<&[u8]> {
        span_bytes(&self.packet, self.spans.get(i)?)
    }
}

impl OwnedRow {
    fn of_driver_row(row: &Row) -> OwnedRow {
        let mut packet = Vec::new();
        let spans = (0..row.len())
            .map(|i| match row.cell(i) {
                Some(b) => {
                    let start = packet.len() as u32;
                    packet.extend_from_slice(b);
                    Span {
                        start,
                        len: b.len() as u32,
                    }
                }
                None => Span {
                    start: NULL_CELL,
                    len: 0,
                },
            })
            .collect();
        OwnedRow { packet, spans }
    }
}

/// The rows of one query.
pub(crate) enum Rows<'c> {
    /// Read from the socket (plain connections).
    Wire(WireRows),
    /// Read through the driver (TLS or compressed connections), with the last row read.
    Driver(mysql::QueryResult<'c, 'c, 'c, mysql::Text>, Option<Row>),
}

impl<'c> Rows<'c> {
    /// Sends `sql` on `conn` and reads its result header. `wire`: the connection is plain TCP
    /// or a Unix socket, so the result can be read from the socket.
    pub(crate) fn query(conn: &'c mut Conn, sql: &str, wire: bool) -> mysql::Result<Rows<'c>> {
        // The query must fit one packet (its payload is the command byte and the text).
        if wire && sql.len() + 1 < MAX_PAYLOAD {
            return Ok(Rows::Wire(WireRows::query(conn, sql)?));
        }
        Ok(Rows::Driver(conn.query_iter(sql)?, None))
    }

    /// The next row; `None` once the result is complete.
    #[inline]
    pub(crate) fn next(&mut self) -> Option<mysql::Result<RowRef<'_>>> {
        match self {
            Rows::Wire(w) => w.next_row().transpose(),
            Rows::Driver(result, last) => match result.next()? {
                Ok(row) => Some(Ok(RowRef::Driver(last.insert(row)))),
                Err(e) => Some(Err(e)),
            },
        }
    }

    /// A copy of the last row [`Rows::next`] returned.
    pub(crate) fn last_row(&self) -> Option<OwnedRow> {
        match self {
            Rows::Wire(w) => w.last_row(),
            Rows::Driver(_, last) => last.as_ref().map(OwnedRow::of_driver_row),
        }
    }
}

/// Where the last row returned lies.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    None,
    /// `buf[start..end]`.
    Buf(usize, usize),
    /// The whole of `big`.
    Big,
    /// The whole of `saved`.
    Saved,
}

/// A result read from the socket.
pub(crate) struct WireRows {
    sock: TcpStream,
    buf: Vec<u8>,
    /// Unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// A payload split over several packets, joined.
    big: Vec<u8>,
    /// The last row, copied before its bytes are overwritten.
    saved: Vec<u8>,
    last: Last,
    spans: Vec<Span>,
    columns: usize,
    seq: u8,
    done: bool,
}

impl WireRows {
    fn query(conn: &mut Conn, sql: &str) -> mysql::Result<WireRows> {
        WireRows::start(socket_of(conn)?, sql, READ_BUFFER)
    }

    /// Sends `sql` as COM_QUERY on `sock` and reads the result's header.
    fn start(sock: TcpStream, sql: &str, buffer: usize) -> mysql::Result<WireRows> {
        let mut r = WireRows {
            sock,
            buf: vec![0; buffer],
            pos: 0,
            end: 0,
            big: Vec::new(),
            saved: Vec::new(),
            last: Last::None,
            spans: Vec::new(),
            columns: 0,
            seq: 0,
            done: false,
        };
        let mut packet = Vec::with_capacity(sql.len() + 5);
        packet.extend_from_slice(&(sql.len() as u32 + 1).to_le_bytes()[..3]);
        packet.push(0); // sequence id
        packet.push(0x03); // COM_QUERY
        packet.extend_from_slice(sql.as_bytes());
        r.sock.write_all(&packet).map_err(|e| r.broken(e))?;
        r.seq = 1;
        r.read_header()?;
        Ok(r)
    }

    /// The column count, the column definitions (skipped: the caller knows its columns) and
    /// the EOF packet after them.
    fn read_header(&mut self) -> mysql::Result<()> {
        let (s, e) = self.packet()?;
        let first = payload(&self.buf, &self.big, s, e);
        match first.first().copied() {
            Some(0xff) => {
                self.done = true;
                return Err(server_error(first));
            }
            Some(0x00) => {
                // No result set (not a SELECT): no rows.
                self.done = true;
                return Ok(());
            }
            _ => {}
        }
        let mut at = 0;
        let count = lenenc(first, &mut at).ok_or_else(|| malformed("column count"))?;
        // MariaDB's cached-metadata extension adds a "metadata follows" byte: 0 means none.
        let skip_meta = first.get(at) == Some(&0);
        self.columns = count as usize;
        if !skip_meta {
            for _ in 0..count {
                self.packet()?;
            }
        }
        // The driver never asks for CLIENT_DEPRECATE_EOF: an EOF packet ends the metadata.
        let (s, e) = self.packet()?;
        let eof = payload(&self.buf, &self.big, s, e);
        if eof.first() != Some(&0xfe) || eof.len() >= 9 {
            return Err(malformed("end of column definitions"));
        }
        Ok(())
    }

    /// The next row, parsed into `spans`; `None` after the terminating packet.
    fn next_row(&mut self) -> mysql::Result<Option<RowRef<'_>>> {
        if self.done {
            return Ok(None);
        }
        let (s, e) = self.packet()?;
        let payload = payload(&self.buf, &self.big, s, e);
        match payload.first().copied() {
            Some(0xfe) if payload.len() < MAX_PAYLOAD => {
                if terminator_status(payload) & MORE_RESULTS != 0 {
                    // More results follow, unread: not done, so dropping shuts the socket.
                    return Err(malformed("a second result set"));
                }
                self.done = true;
                return Ok(None);
            }
            Some(0xff) => {
                self.done = true;
                return Err(server_error(payload));
            }
            _ => {}
        }
        parse_cells(payload, self.columns, &mut self.spans)?;
        self.last = if s == usize::MAX {
            Last::Big
        } else {
            Last::Buf(s, e)
        };
        Ok(Some(RowRef::Wire(payload, &self.spans)))
    }

    fn last_row(&self) -> Option<OwnedRow> {
        let packet = match self.last {
            Last::None => return None,
            Last::Buf(s, e) => &self.buf[s..e],
            Last::Big => &self.big[..],
            Last::Saved => &self.saved[..],
        };
        let mut spans = Vec::new();
        parse_cells(packet, self.columns, &mut spans).ok()?;
        Some(OwnedRow {
            packet: packet.to_vec(),
            spans,
        })
    }

    /// Copies the last row out before the bytes holding it are reused.
    fn save_last(&mut self) {
        let bytes = match self.last {
            Last::Buf(s, e) => &self.buf[s..e],
            Last::Big => &self.big[..],
            Last::None | Last::Saved => return,
        };
        self.saved.clear();
        self.saved.extend_from_slice(bytes);
        self.last = Last::Saved;
    }

    /// Reads one logical packet: its payload is `buf[s..e]`, or `big` when `s == usize::MAX`
    /// (a payload of 16 MiB or more, split over several packets).
    fn packet(&mut self) -> mysql::Result<(usize, usize)> {
        let (s, e) = self.one_packet()?;
        if e - s < MAX_PAYLOAD {
            return Ok((s, e));
        }
        if self.last == Last::Big {
            self.save_last();
        }
        self.big.clear();
        self.big.extend_from_slice(&self.buf[s..e]);
        loop {
            let (s, e) = self.one_packet()?;
            self.big.extend_from_slice(&self.buf[s..e]);
            if e - s < MAX_PAYLOAD {
                return Ok((usize::MAX, usize::MAX));
            }
        }
    }

    /// Reads one physical packet into `buf`, returning its payload's range.
    fn one_packet(&mut self) -> mysql::Result<(usize, usize)> {
        self.fill(4)?;
        let h = &self.buf[self.pos..self.pos + 4];
        let len = u32::from_le_bytes([h[0], h[1], h[2], 0]) as usize;
        if h[3] != self.seq {
            // Out of step with the server: `done` stays false, so dropping shuts the socket.
            return Err(malformed("packet sequence"));
        }
        self.seq = self.seq.wrapping_add(1);
        self.fill(4 + len)?;
        let start = self.pos + 4;
        self.pos = start + len;
        Ok((start, start + len))
    }

    /// Makes at least `n` unread bytes available at `buf[pos..]`.
    fn fill(&mut self, n: usize) -> mysql::Result<()> {
        if self.end - self.pos >= n {
            return Ok(());
        }
        if matches!(self.last, Last::Buf(..)) {
            self.save_last();
        }
        self.buf.copy_within(self.pos..self.end, 0);
        self.end -= self.pos;
        self.pos = 0;
        if self.buf.len() < n {
            self.buf.resize(n, 0);
        }
        while self.end < n {
            match self.sock.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    let eof = io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection in the middle of a result",
                    );
                    return Err(self.broken(eof));
                }
                Ok(k) => self.end += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.broken(e)),
            }
        }
        Ok(())
    }

    fn broken(&mut self, e: io::Error) -> mysql::Error {
        self.done = true;
        mysql::Error::IoError(e)
    }
}

impl Drop for WireRows {
    fn drop(&mut self) {
        if !self.done {
            // Rows are still coming: the driver must never read them as a reply to its next
            // command. A shut socket makes that use fail as a lost connection.
            let _ = self.sock.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A payload read by [`WireRows::packet`].
#[inline]
fn payload<'a>(buf: &'a [u8], big: &'a [u8], s: usize, e: usize) -> &'a [u8] {
    if s == usize::MAX {
        big
    } else {
        &buf[s..e]
    }
}

/// A duplicate of the connection's socket descriptor. `TcpStream` is only the handle for
/// read(2), write(2) and shutdown(2), which work the same on a Unix socket.
#[allow(unsafe_code)]
fn socket_of(conn: &Conn) -> mysql::Result<TcpStream> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    // SAFETY: the descriptor is the socket of `conn`, which is borrowed for this whole call, so
    // it is open; it is only duplicated here (`try_clone_to_owned`), never closed or taken.
    let fd = unsafe { BorrowedFd::borrow_raw(conn.as_raw_fd()) };
    Ok(TcpStream::from(fd.try_clone_to_owned()?))
}

/// Parses a text row: `columns` length-encoded strings (0xfb is NULL) filling the packet.
#[inline]
fn parse_cells(p: &[u8], columns: usize, spans: &mut Vec<Span>) -> mysql::Result<()> {
    spans.clear();
    let mut at = 0usize;
    for _ in 0..columns {
        if p.get(at) == Some(&0xfb) {
            at += 1;
            spans.push(Span {
                start: NULL_CELL,
                len: 0,
            });
            continue;
        }
        let len = lenenc(p, &mut at).ok_or_else(|| malformed("row"))? as usize;
        if len > p.len() - at {
            return Err(malformed("row"));
        }
        spans.push(Span {
            start: at as u32,
            len: len as u32,
        });
        at += len;
    }
    if at != p.len() {
        return Err(malformed("row"));
    }
    Ok(())
}

/// A length-encoded integer at `p[*at..]`; advances `at`.
#[inline]
fn lenenc(p: &[u8], at: &mut usize) -> Option<u64> {
    let first = *p.get(*at)?;
    let width = match first {
        0..=0xfa => {
            *at += 1;
            return Some(first as u64);
        }
        0xfc => 2,
        0xfd => 3,
        0xfe => 8,
        _ => return None,
    };
    let bytes = p.get(*at + 1..*at + 1 + width)?;
    *at += 1 + width;
    let mut v = [0u8; 8];
    v[..width].copy_from_slice(bytes);
    Some(u64::from_le_bytes(v))
}

/// The status flags of an EOF packet (`fe warnings status`) or of an OK packet sent as a
/// terminator (`fe affected-rows last-insert-id status warnings`).
fn terminator_status(p: &[u8]) -> u16 {
    let at_status = if p.len() == 5 {
        3
    } else {
        let mut at = 1;
        let _ = lenenc(p, &mut at);
        let _ = lenenc(p, &mut at);
        at
    };
    p.get(at_status..at_status + 2)
        .map_or(0, |s| u16::from_le_bytes([s[0], s[1]]))
}

/// An ERR packet: `ff code [#sqlstate] message`.
fn server_error(p: &[u8]) -> mysql::Error {
    let code = p.get(1..3).map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
    let (state, message) = match p.get(3) {
        Some(b'#') if p.len() >= 9 => (&p[4..9], &p[9..]),
        _ => (&b"HY000"[..], p.get(3..).unwrap_or_default()),
    };
    mysql::Error::MySqlError(mysql::MySqlError {
        state: String::from_utf8_lossy(state).into_owned(),
        message: String::from_utf8_lossy(message).into_owned(),
        code,
    })
}

fn malformed(what: &str) -> mysql::Error {
    mysql::Error::IoError(io::Error::new(
        io::ErrorKind::InvalidData,
        format!("malformed result from the server ({what})"),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(p: &[u8], n: usize) -> Vec<Option<Vec<u8>>> {
        let mut spans = Vec::new();
        parse_cells(p, n, &mut spans).unwrap();
        spans
            .iter()
            .map(|s| span_bytes(p, s).map(<[u8]>::to_vec))
            .collect()
    }

    #[test]
    fn cells_are_length_encoded_with_null() {
        let p = b"\x01a\xfb\x00\x03xyz";
        assert_eq!(
            cells(p, 4),
            vec![
                Some(b"a".to_vec()),
                None,
                Some(Vec::new()),
                Some(b"xyz".to_vec())
            ]
        );
        let mut long = vec![0xfc, 0x2c, 0x01];
        long.extend(std::iter::repeat_n(b'q', 300));
        assert_eq!(cells(&long, 1), vec![Some(vec![b'q'; 300])]);
    }

    #[test]
    fn malformed_rows_are_invalid_data() {
        let mut spans = Vec::new();
        for (p, n) in [
            (&b"\x05ab"[..], 1),
            (&b"\x01a\x01b"[..], 1),
            (&b"\x01a"[..], 2),
            (&b"\xff"[..], 1),
        ] {
            let e = parse_cells(p, n, &mut spans).unwrap_err();
            assert!(
                matches!(&e, mysql::Error::IoError(io) if io.kind() == io::ErrorKind::InvalidData),
                "{e}"
            );
        }
    }

    /// A packet with its header.
    fn packet(seq: &mut u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for (k, part) in payload.chunks(MAX_PAYLOAD).enumerate() {
            out.extend_from_slice(&(part.len() as u32).to_le_bytes()[..3]);
            out.push(*seq);
            *seq = seq.wrapping_add(1);
            out.extend_from_slice(part);
            let last = k == payload.len().div_ceil(MAX_PAYLOAD).max(1) - 1;
            if last && part.len() == MAX_PAYLOAD {
                out.extend_from_slice(&[0, 0, 0, *seq]);
                *seq = seq.wrapping_add(1);
            }
        }
        if payload.is_empty() {
            out.extend_from_slice(&[0, 0, 0, *seq]);
            *seq = seq.wrapping_add(1);
        }
        out
    }

    /// A text row of two cells: `id` and `v` (None is NULL).
    fn row(id: usize, v: Option<&[u8]>) -> Vec<u8> {
        let mut p = Vec::new();
        let id = id.to_string();
        p.push(id.len() as u8);
        p.extend_from_slice(id.as_bytes());
        match v {
            None => p.push(0xfb),
            Some(v) => {
                let n = v.len() as u64;
                match n {
                    0..=0xfa => p.push(n as u8),
                    0xfb..=0xffff => {
                        p.push(0xfc);
                        p.extend_from_slice(&n.to_le_bytes()[..2]);
                    }
                    0x1_0000..=0xff_ffff => {
                        p.push(0xfd);
                        p.extend_from_slice(&n.to_le_bytes()[..3]);
                    }
                    _ => {
                        p.push(0xfe);
                        p.extend_from_slice(&n.to_le_bytes());
                    }
                }
                p.extend_from_slice(v);
            }
        }
        p
    }

    /// A result of two columns: its header, `rows`, and a terminator with `status` unless None.
    fn result(rows: &[Vec<u8>], status: Option<u16>) -> Vec<u8> {
        let mut seq = 1u8;
        let mut reply = packet(&mut seq, &[2]);
        reply.extend(packet(&mut seq, b"column definition id"));
        reply.extend(packet(&mut seq, b"column definition v"));
        reply.extend(packet(&mut seq, &[0xfe, 0, 0, 2, 0]));
        for r in rows {
            reply.extend(packet(&mut seq, r));
        }
        if let Some(status) = status {
            let [lo, hi] = status.to_le_bytes();
            reply.extend(packet(&mut seq, &[0xfe, 0, 0, lo, hi]));
        }
        reply
    }

    /// A peer that reads the query `SELECT 1` and answers `reply`; the reader's socket (a
    /// duplicate of the returned client end) and the peer's thread, which returns its end.
    fn peer(
        reply: Vec<u8>,
    ) -> (
        TcpStream,
        std::os::unix::net::UnixStream,
        std::thread::JoinHandle<std::os::unix::net::UnixStream>,
    ) {
        let (client, mut server) = std::os::unix::net::UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            let mut query = [0u8; 13];
            server.read_exact(&mut query).unwrap();
            assert_eq!(&query, b"\x09\0\0\0\x03SELECT 1");
            server.write_all(&reply).unwrap();
            server
        });
        let sock = TcpStream::from(std::os::fd::OwnedFd::from(client.try_clone().unwrap()));
        (sock, client, writer)
    }

    /// Every row read, as its cells (None is NULL).
    type ReadRows = Vec<Vec<Option<Vec<u8>>>>;

    /// A peer answering one query with `rows`; the reader reads them through a buffer of
    /// `buffer` bytes. Returns every row read and the last row as `last_row` gives it.
    fn serve(rows: &[Vec<u8>], buffer: usize) -> (ReadRows, Option<OwnedRow>) {
        let (sock, _client, writer) = peer(result(rows, Some(2)));
        let mut r = WireRows::start(sock, "SELECT 1", buffer).unwrap();
        let mut got = Vec::new();
        while let Some(row) = r.next_row().unwrap() {
            got.push(
                (0..2)
                    .map(|i| RowRef::cell(&row, i).map(<[u8]>::to_vec))
                    .collect(),
            );
        }
        writer.join().unwrap();
        assert!(r.done);
        (got, r.last_row())
    }

    #[test]
    fn rows_come_whole_through_any_buffer_size() {
        let rows: Vec<Vec<u8>> = (0..40)
            .map(|i| match i % 4 {
                0 => row(i, None),
                1 => row(i, Some(b"")),
                _ => row(i, Some(&vec![b'a' + (i % 26) as u8; i * 7])),
            })
            .collect();
        for buffer in [1, 5, 9, 16, 31, 64, 1000, 1 << 16] {
            let (got, last) = serve(&rows, buffer);
            assert_eq!(got.len(), 40, "buffer {buffer}");
            for (i, cells) in got.iter().enumerate() {
                assert_eq!(cells[0].as_deref(), Some(i.to_string().as_bytes()));
                let want = match i % 4 {
                    0 => None,
                    1 => Some(Vec::new()),
                    _ => Some(vec![b'a' + (i % 26) as u8; i * 7]),
                };
                assert_eq!(cells[1], want, "buffer {buffer} row {i}");
            }
            let last = last.unwrap();
            assert_eq!(last.cell(0), Some(&b"39"[..]), "buffer {buffer}");
            assert_eq!(last.cell(1), Some(&vec![b'n'; 273][..]));
        }
    }

    /// Whether the reader's socket was shut: the peer and the driver's own descriptor (`client`)
    /// both see the end of the connection. Without a shutdown these reads would wait: they time
    /// out and fail instead.
    fn was_shut(
        client: &std::os::unix::net::UnixStream,
        writer: std::thread::JoinHandle<std::os::unix::net::UnixStream>,
    ) -> bool {
        let mut server = writer.join().unwrap();
        let limit = Some(std::time::Duration::from_secs(10));
        server.set_read_timeout(limit).unwrap();
        client.set_read_timeout(limit).unwrap();
        let mut rest = Vec::new();
        server.read_to_end(&mut rest).unwrap();
        let mut buf = [0u8; 1];
        rest.is_empty() && (&*client).read(&mut buf).unwrap() == 0
    }

    /// A reader dropped before the end of its result, or stopped by a result it cannot follow,
    /// shuts the socket, so the driver can never read the rest as the reply to a later command;
    /// one that read its whole result leaves the socket open.
    #[test]
    fn a_reader_stopped_before_the_end_shuts_the_socket() {
        let rows: Vec<Vec<u8>> = (0..3).map(|i| row(i, Some(b"x"))).collect();
        // Dropped after one row.
        let (sock, client, writer) = peer(result(&rows, Some(2)));
        let mut r = WireRows::start(sock, "SELECT 1", READ_BUFFER).unwrap();
        assert!(r.next_row().unwrap().is_some());
        drop(r);
        assert!(was_shut(&client, writer));
        // A second result set follows (SERVER_MORE_RESULTS_EXISTS): an error, then shut.
        let (sock, client, writer) = peer(result(&rows, Some(2 | MORE_RESULTS)));
        let mut r = WireRows::start(sock, "SELECT 1", READ_BUFFER).unwrap();
        while let Ok(Some(_)) = r.next_row() {}
        drop(r);
        assert!(was_shut(&client, writer));
        // A packet out of sequence: an error, then shut.
        let mut reply = result(&rows, None);
        let mut seq = 9u8;
        reply.extend(packet(&mut seq, &row(3, Some(b"x"))));
        let (sock, client, writer) = peer(reply);
        let mut r = WireRows::start(sock, "SELECT 1", READ_BUFFER).unwrap();
        let e = loop {
            match r.next_row() {
                Ok(Some(_)) => {}
                Ok(None) => panic!("the bad packet was taken for the end"),
                Err(e) => break e,
            }
        };
        assert!(e.to_string().contains("packet sequence"), "{e}");
        drop(r);
        assert!(was_shut(&client, writer));
        // The whole result read: the socket stays open.
        let (sock, client, writer) = peer(result(&rows, Some(2)));
        let mut r = WireRows::start(sock, "SELECT 1", READ_BUFFER).unwrap();
        while r.next_row().unwrap().is_some() {}
        drop(r);
        let mut server = writer.join().unwrap();
        server.write_all(b"still open").unwrap();
        let mut buf = [0u8; 10];
        (&client).read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"still open");
    }

    #[test]
    fn rows_of_sixteen_mib_and_more_span_packets() {
        // Payloads just below, at and above 0xffffff bytes (at: a full packet, then an empty
        // one), then a small row: every one whole, and the last row kept.
        let at = MAX_PAYLOAD - 2 - 4; // "1" cell, 4-byte length, value
        let rows = vec![
            row(1, Some(&vec![1u8; at - 1])),
            row(2, Some(&vec![2u8; at])),
            row(3, Some(&vec![3u8; at + 1])),
            row(4, Some(&vec![4u8; 2 * MAX_PAYLOAD + 10])),
            row(5, Some(b"end")),
        ];
        assert_eq!(rows[1].len(), MAX_PAYLOAD);
        let (got, last) = serve(&rows, READ_BUFFER);
        let lens: Vec<usize> = got.iter().map(|c| c[1].as_ref().unwrap().len()).collect();
        assert_eq!(lens, vec![at - 1, at, at + 1, 2 * MAX_PAYLOAD + 10, 3]);
        for (k, cells) in got.iter().enumerate().take(4) {
            assert!(cells[1].as_ref().unwrap().iter().all(|&b| b == k as u8 + 1));
        }
        assert_eq!(last.unwrap().cell(1), Some(&b"end"[..]));
        // The last row itself spanning packets.
        let (_, last) = serve(&rows[..4], READ_BUFFER);
        assert_eq!(
            last.unwrap().cell(1).map(<[u8]>::len),
            Some(2 * MAX_PAYLOAD + 10)
        );
    }

    #[test]
    fn terminators_and_errors() {
        assert_eq!(terminator_status(b"\xfe\x00\x00\x0a\x00"), 0x000a);
        assert_eq!(terminator_status(b"\xfe\x00\x00\x22\x00\x00\x00"), 0x0022);
        match server_error(b"\xff\x15\x05#28000Access denied") {
            mysql::Error::MySqlError(e) => {
                assert_eq!((e.code, e.state.as_str()), (1301, "28000"));
                assert_eq!(e.message, "Access denied");
            }
            e => panic!("{e}"),
        }
    }
}
