//! JSONL batch files: one bare record per line, the same values as RECORD messages, gzip only
//! when configured.

use std::fs::File;
use std::io::{BufWriter, Write};

use flate2::write::GzEncoder;

use crate::config::BatchCompression;
use crate::encode::json::write_str;
use crate::encode::{encode_cell, ColumnWarnings, Encoder};
use crate::plan::StreamPlan;
use crate::source::wire::Cells;

enum Sink {
    Plain(BufWriter<File>),
    Gzip(Box<GzEncoder<BufWriter<File>>>),
}

/// An open JSONL batch file.
pub(crate) struct JsonlFile {
    sink: Sink,
    keys: Vec<Vec<u8>>,
    encoders: Vec<Encoder>,
    line: Vec<u8>,
}

impl JsonlFile {
    /// Starts a file for `plan`'s columns.
    pub(crate) fn new(file: File, plan: &StreamPlan, compression: BatchCompression) -> Self {
        let buf = BufWriter::with_capacity(1 << 20, file);
        let sink = match compression {
            BatchCompression::Gzip => {
                Sink::Gzip(Box::new(GzEncoder::new(buf, flate2::Compression::fast())))
            }
            _ => Sink::Plain(buf),
        };
        let keys = plan
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut k = Vec::new();
                k.push(if i == 0 { b'{' } else { b',' });
                write_str(&mut k, &c.name);
                k.push(b':');
                k
            })
            .collect();
        JsonlFile {
            sink,
            keys,
            encoders: plan.columns.iter().map(|c| c.encoder).collect(),
            line: Vec::with_capacity(4096),
        }
    }

    /// Appends one record line.
    pub(crate) fn append(
        &mut self,
        row: &impl Cells,
        warnings: &mut [ColumnWarnings],
    ) -> std::io::Result<()> {
        self.line.clear();
        if self.keys.is_empty() {
            self.line.push(b'{');
        }
        for (i, enc) in self.encoders.iter().enumerate() {
            self.line.extend_from_slice(&self.keys[i]);
            encode_cell(*enc, row.cell(i), &mut self.line, &mut warnings[i]);
        }
        self.line.extend_from_slice(b"}\n");
        match &mut self.sink {
            Sink::Plain(w) => w.write_all(&self.line),
            Sink::Gzip(w) => w.write_all(&self.line),
        }
    }

    /// Flushes and closes the compression stream; returns the file for syncing.
    pub(crate) fn finish(self) -> std::io::Result<File> {
        let buf = match self.sink {
            Sink::Plain(w) => w,
            Sink::Gzip(w) => w.finish()?,
        };
        buf.into_inner().map_err(|e| e.into_error())
    }
}
