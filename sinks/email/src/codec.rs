//! Streaming encoders between the parts of a message: base64 in 76-character lines (RFC 2045)
//! as a reader and as a writer, and a writer that turns bare LF into CRLF. Each holds at most one
//! chunk, so a file of any size passes through in constant memory.

use std::io::{self, Read, Write};

use base64::Engine;

/// Input bytes per base64 line (57 bytes make 76 characters).
const LINE_BYTES: usize = 57;
/// Lines encoded per chunk.
const CHUNK_LINES: usize = 1024;

fn encode_lines(input: &[u8], out: &mut Vec<u8>) {
    for line in input.chunks(LINE_BYTES) {
        let mut text = [0u8; 76];
        let n = base64::engine::general_purpose::STANDARD
            .encode_slice(line, &mut text)
            .unwrap_or(0);
        out.extend_from_slice(text.get(..n).unwrap_or_default());
        out.extend_from_slice(b"\r\n");
    }
}

/// Reads `inner` and yields it base64-encoded in CRLF-terminated lines. An empty input yields
/// one empty line, so the part still ends with the CRLF that a following boundary needs. When
/// `expected` is given, a different byte count is an error (the file is not what was recorded).
pub struct Base64Reader<R> {
    inner: R,
    input: Vec<u8>,
    output: Vec<u8>,
    pos: usize,
    count: u64,
    expected: Option<u64>,
    done: bool,
}

impl<R: Read> Base64Reader<R> {
    /// Reads `inner` as base64 text; `expected`, when known, is the decoded length to check.
    pub fn new(inner: R, expected: Option<u64>) -> Self {
        Base64Reader {
            inner,
            input: vec![0; LINE_BYTES * CHUNK_LINES],
            output: Vec::new(),
            pos: 0,
            count: 0,
            expected,
            done: false,
        }
    }

    /// Reads a full chunk (or up to the end) and encodes it.
    fn refill(&mut self) -> io::Result<()> {
        let mut filled = 0;
        while filled < self.input.len() {
            let Some(space) = self.input.get_mut(filled..) else {
                break;
            };
            match self.inner.read(space) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.output.clear();
        self.pos = 0;
        if filled == 0 {
            self.done = true;
            if let Some(expected) = self.expected.filter(|e| *e != self.count) {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("file has {} bytes, {expected} were recorded", self.count),
                ));
            }
            if self.count == 0 {
                self.output.extend_from_slice(b"\r\n");
            }
            return Ok(());
        }
        self.count += filled as u64;
        encode_lines(
            self.input.get(..filled).unwrap_or_default(),
            &mut self.output,
        );
        Ok(())
    }
}

impl<R: Read> Read for Base64Reader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let pending = self.output.get(self.pos..).unwrap_or_default();
            if !pending.is_empty() || buf.is_empty() {
                let n = pending.len().min(buf.len());
                buf.get_mut(..n)
                    .unwrap_or_default()
                    .copy_from_slice(pending.get(..n).unwrap_or_default());
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            self.refill()?;
        }
    }
}

/// Writes base64 of what it is given, in CRLF-terminated 76-character lines, to `inner`.
/// [`Base64Writer::finish`] writes the last partial line.
pub struct Base64Writer<W: Write> {
    inner: W,
    pending: Vec<u8>,
    scratch: Vec<u8>,
}

impl<W: Write> Base64Writer<W> {
    /// Writes base64 of what it is given into `inner`, in lines of 76 characters.
    pub fn new(inner: W) -> Self {
        Base64Writer {
            inner,
            pending: Vec::with_capacity(LINE_BYTES * CHUNK_LINES),
            scratch: Vec::new(),
        }
    }

    fn flush_whole_lines(&mut self, all: bool) -> io::Result<()> {
        let whole = if all {
            self.pending.len()
        } else {
            self.pending.len() / LINE_BYTES * LINE_BYTES
        };
        if whole == 0 {
            return Ok(());
        }
        self.scratch.clear();
        encode_lines(
            self.pending.get(..whole).unwrap_or_default(),
            &mut self.scratch,
        );
        self.inner.write_all(&self.scratch)?;
        self.pending.drain(..whole);
        Ok(())
    }

    /// Writes what is left and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_whole_lines(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for Base64Writer<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = (LINE_BYTES * CHUNK_LINES).saturating_sub(self.pending.len());
        let n = buf.len().min(room.max(LINE_BYTES));
        self.pending
            .extend_from_slice(buf.get(..n).unwrap_or_default());
        if self.pending.len() >= LINE_BYTES * CHUNK_LINES {
            self.flush_whole_lines(false)?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.flush_whole_lines(false)?;
        self.inner.flush()
    }
}

/// Passes bytes through, turning every LF not preceded by CR into CRLF (SMTP wants CRLF lines;
/// an armored OpenPGP message is written with bare LF).
pub struct CrlfWriter<W: Write> {
    inner: W,
    last: u8,
}

impl<W: Write> CrlfWriter<W> {
    /// Writes into `inner`, turning every bare line feed into CRLF.
    pub fn new(inner: W) -> Self {
        CrlfWriter { inner, last: 0 }
    }
}

impl<W: Write> Write for CrlfWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut start = 0;
        for (i, b) in buf.iter().enumerate() {
            if *b == b'\n' {
                let previous = if i == 0 {
                    self.last
                } else {
                    buf.get(i - 1).copied().unwrap_or(0)
                };
                if previous != b'\r' {
                    self.inner
                        .write_all(buf.get(start..i).unwrap_or_default())?;
                    self.inner.write_all(b"\r")?;
                    start = i;
                }
            }
        }
        self.inner.write_all(buf.get(start..).unwrap_or_default())?;
        if let Some(last) = buf.last() {
            self.last = *last;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(text: &[u8]) -> Vec<u8> {
        let joined: Vec<u8> = text
            .split(|b| *b == b'\n')
            .inspect(|line| assert!(line.len() <= 77))
            .flat_map(|l| l.strip_suffix(b"\r").unwrap_or(l).to_vec())
            .collect();
        base64::engine::general_purpose::STANDARD
            .decode(joined)
            .unwrap()
    }

    #[test]
    fn reader_and_writer_agree_and_round_trip() {
        for size in [0usize, 1, 56, 57, 58, 57 * 1024, 57 * 1024 + 5, 200_000] {
            let data: Vec<u8> = (0..size).map(|i| (i * 31 % 256) as u8).collect();
            let mut via_reader = Vec::new();
            Base64Reader::new(&data[..], Some(size as u64))
                .read_to_end(&mut via_reader)
                .unwrap();
            assert!(via_reader.ends_with(b"\r\n"));
            assert_eq!(decode(&via_reader), data);
            let mut w = Base64Writer::new(Vec::new());
            w.write_all(&data).unwrap();
            let via_writer = w.finish().unwrap();
            if size > 0 {
                assert_eq!(via_writer, via_reader);
            }
        }
    }

    #[test]
    fn a_size_mismatch_is_an_error() {
        let mut out = Vec::new();
        let err = Base64Reader::new(&b"abc"[..], Some(4))
            .read_to_end(&mut out)
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn bare_lf_becomes_crlf_across_writes() {
        let mut w = CrlfWriter::new(Vec::new());
        for piece in [&b"a\nb\r"[..], b"\nc\n", b"\n", b"\r\nd"] {
            w.write_all(piece).unwrap();
        }
        assert_eq!(w.inner, b"a\r\nb\r\nc\r\n\r\n\r\nd");
    }
}
