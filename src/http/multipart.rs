//! A streaming reader for `multipart/form-data` bodies (RFC 7578 on RFC 2046's framing).
//!
//! Why not actix-multipart: it looks for the boundary by searching for every CR in the body and
//! starting a new substring search at each one (random bytes hold a CR every 256 bytes), and it
//! copies every byte of the body into a buffer of its own. On a 1 GiB upload that was about a
//! sixth of the server's CPU (profiled with `perf`; see BENCHMARKS.md). This reader looks for the
//! whole delimiter (`CRLF--boundary`) with one substring searcher built once per request, and
//! hands out the part's bytes as slices of the chunks the connection gave it: nothing is copied,
//! except for a chunk's last few bytes that may begin a delimiter (shorter than the delimiter)
//! and the headers of a part that arrive split across chunks.
//!
//! Bounds, whatever the client sends:
//! - the whole body, counted as it is read, is at most `max_bytes` ([`MultipartError::TooLarge`]);
//! - memory: one chunk of the connection, plus at most [`MAX_HEAD_BYTES`] of a part's headers;
//! - time: linear in the body (`memmem` is linear in the worst case). A part's headers split
//!   across many small chunks are joined again for each chunk, at most [`MAX_HEAD_BYTES`] each.
//!
//! What it accepts: a preamble before the first boundary and an epilogue after the last are
//! skipped; transport padding (spaces and tabs) after a boundary is allowed; each part needs a
//! `Content-Disposition: form-data` header with a `name`; a part's own `Content-Length` is
//! ignored (the boundary alone ends a part); nested multipart parts are refused.

use actix_web::http::header::{ContentDisposition, HeaderValue};
use actix_web::mime;
use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use memchr::memmem::Finder;

/// The most bytes a part's headers (up to and including their blank line) may take.
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// The most headers a part may have.
const MAX_PART_HEADERS: usize = 16;
/// The longest boundary taken. RFC 2046 allows 70 characters; a little room for lenient clients.
const MAX_BOUNDARY: usize = 200;
/// The longest transport padding taken after a boundary.
const MAX_PADDING: usize = 256;

/// Why a multipart body was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MultipartError {
    /// The body is larger than the limit.
    #[error("the body is larger than the limit")]
    TooLarge,
    /// The Content-Type has no usable boundary.
    #[error("the Content-Type has no usable boundary")]
    NoBoundary,
    /// The framing or a part's headers are not what RFC 7578 asks for.
    #[error("{0}")]
    Malformed(&'static str),
    /// The body ended, or could not be read, before its closing boundary.
    #[error("the body ends before its closing boundary")]
    Truncated,
}

/// The boundary named by a `multipart/*` Content-Type value: 1 to 200 printable ASCII
/// characters (spaces included).
pub fn boundary(content_type: Option<&HeaderValue>) -> Result<String, MultipartError> {
    let mime: mime::Mime = content_type
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .ok_or(MultipartError::NoBoundary)?;
    if mime.type_() != mime::MULTIPART {
        return Err(MultipartError::NoBoundary);
    }
    let boundary = mime
        .get_param(mime::BOUNDARY)
        .ok_or(MultipartError::NoBoundary)?
        .as_str();
    let printable = boundary.bytes().all(|b| (b' '..=b'~').contains(&b));
    if boundary.is_empty() || boundary.len() > MAX_BOUNDARY || !printable {
        return Err(MultipartError::NoBoundary);
    }
    Ok(boundary.to_owned())
}

/// What a part's headers say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartHead {
    /// The `name` of its Content-Disposition.
    pub name: String,
    /// The `filename` of its Content-Disposition, when there is one (possibly empty: a file input
    /// left empty).
    pub filename: Option<String>,
    /// Its Content-Type's essence (`type/subtype`, lowercase), when it has a readable one.
    pub content_type: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first boundary.
    Preamble,
    /// Just after a boundary: the rest of its line comes next.
    Delimited,
    /// In a part's content.
    Body,
    /// After the closing boundary.
    Done,
}

/// Reads the parts of one multipart body from a stream of chunks: [`next_part`] for each part's
/// headers, then [`next_chunk`] until `None` for its content.
///
/// [`next_part`]: MultipartReader::next_part
/// [`next_chunk`]: MultipartReader::next_chunk
pub struct MultipartReader<S> {
    stream: S,
    /// `CRLF--boundary`: what ends every part.
    delimiter: Box<[u8]>,
    finder: Finder<'static>,
    /// Bytes read and not yet consumed.
    input: Bytes,
    /// In a part's content: the end of the last chunk, held back because it may be the start of
    /// the delimiter (always a proper prefix of it). `input` is empty while it is not.
    carry: Bytes,
    state: State,
    /// Body bytes read so far.
    read: u64,
    max_bytes: u64,
}

impl<S, E> MultipartReader<S>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    /// Reads `stream` as a multipart body with `boundary`, refusing it once more than `max_bytes`
    /// have been read.
    pub fn new(stream: S, boundary: &str, max_bytes: u64) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        let finder = Finder::new(&delimiter).into_owned();
        MultipartReader {
            stream,
            delimiter: delimiter.into_boxed_slice(),
            finder,
            // The first boundary has no line break before it: one is supplied, so that the
            // delimiter finds it too (RFC 2046 counts the break as part of the delimiter).
            input: Bytes::from_static(b"\r\n"),
            carry: Bytes::new(),
            state: State::Preamble,
            read: 0,
            max_bytes,
        }
    }

    /// The headers of the next part, or `None` after the closing boundary. What is left of the
    /// current part's content is skipped.
    pub async fn next_part(&mut self) -> Result<Option<PartHead>, MultipartError> {
        loop {
            match self.state {
                State::Done => return Ok(None),
                State::Body => while self.next_chunk().await?.is_some() {},
                State::Preamble => self.skip_preamble().await?,
                State::Delimited => {
                    if self.read_boundary_line().await? {
                        self.state = State::Done;
                        self.skip_epilogue().await?;
                        return Ok(None);
                    }
                    let head = self.read_head().await?;
                    self.state = State::Body;
                    return Ok(Some(head));
                }
            }
        }
    }

    /// The next piece of the current part's content, or `None` at its end. Pieces are never
    /// empty.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, MultipartError> {
        while self.state == State::Body {
            if !self.carry.is_empty() {
                if self.input.is_empty() {
                    self.input = self.read_chunk().await?.ok_or(MultipartError::Truncated)?;
                }
                let rest = &self.delimiter[self.carry.len()..];
                let n = rest.len().min(self.input.len());
                if self.input[..n] != rest[..n] {
                    // Not a delimiter after all: the held-back bytes are content. (The delimiter
                    // holds its only CR first, so no later start inside them can match either.)
                    return Ok(Some(std::mem::take(&mut self.carry)));
                }
                if n == rest.len() {
                    self.input = self.input.slice(n..);
                    self.carry = Bytes::new();
                    self.state = State::Delimited;
                    return Ok(None);
                }
                // Still a possible delimiter: hold back this chunk too (it is short).
                self.carry = join(&self.carry, &std::mem::take(&mut self.input));
                continue;
            }
            if self.input.is_empty() {
                self.input = self.read_chunk().await?.ok_or(MultipartError::Truncated)?;
            }
            if let Some(at) = self.finder.find(&self.input) {
                let content = self.input.split_to(at);
                self.input = self.input.slice(self.delimiter.len()..);
                self.state = State::Delimited;
                return Ok((!content.is_empty()).then_some(content));
            }
            let keep = held_back(&self.input, &self.delimiter);
            let content = self.input.split_to(keep);
            self.carry = std::mem::take(&mut self.input);
            if !content.is_empty() {
                return Ok(Some(content));
            }
        }
        Ok(None)
    }

    /// The next non-empty chunk of the body, or `None` at its end.
    async fn read_chunk(&mut self) -> Result<Option<Bytes>, MultipartError> {
        while let Some(chunk) = self.stream.next().await {
            let chunk = chunk.map_err(|_| MultipartError::Truncated)?;
            self.read += chunk.len() as u64;
            if self.read > self.max_bytes {
                return Err(MultipartError::TooLarge);
            }
            if !chunk.is_empty() {
                return Ok(Some(chunk));
            }
        }
        Ok(None)
    }

    /// Appends the next chunk to `input` (for the short stretches read outside a part's
    /// content; `input` is then at most a few KiB, which bounds the copy).
    async fn read_more(&mut self) -> Result<(), MultipartError> {
        let chunk = self.read_chunk().await?.ok_or(MultipartError::Truncated)?;
        self.input = join(&self.input, &chunk);
        Ok(())
    }

    async fn skip_preamble(&mut self) -> Result<(), MultipartError> {
        loop {
            if let Some(at) = self.finder.find(&self.input) {
                self.input = self.input.slice(at + self.delimiter.len()..);
                self.state = State::Delimited;
                return Ok(());
            }
            // Only a delimiter's beginning at the very end can matter.
            let keep = self.input.len().min(self.delimiter.len() - 1);
            self.input = self.input.slice(self.input.len() - keep..);
            self.read_more().await.map_err(|e| match e {
                MultipartError::Truncated => MultipartError::Malformed("the body has no boundary"),
                other => other,
            })?;
        }
    }

    /// Reads the rest of a boundary's line: `true` for the closing boundary (`--`), `false` for
    /// a line break (after optional padding) that starts a part.
    async fn read_boundary_line(&mut self) -> Result<bool, MultipartError> {
        loop {
            if self.input.starts_with(b"--") {
                self.input = self.input.slice(2..);
                return Ok(true);
            }
            if let Some(at) = memchr::memmem::find(&self.input, b"\r\n") {
                let padding = &self.input[..at];
                if padding.len() > MAX_PADDING || !padding.iter().all(|b| matches!(b, b' ' | b'\t'))
                {
                    return Err(MultipartError::Malformed(
                        "a boundary is followed by other text on its line",
                    ));
                }
                self.input = self.input.slice(at + 2..);
                return Ok(false);
            }
            if self.input.len() > MAX_PADDING {
                return Err(MultipartError::Malformed(
                    "a boundary is followed by other text on its line",
                ));
            }
            self.read_more().await?;
        }
    }

    async fn read_head(&mut self) -> Result<PartHead, MultipartError> {
        const TOO_LONG: MultipartError =
            MultipartError::Malformed("a part's headers are longer than 8 KiB");
        let mut scanned = 0;
        loop {
            if let Some(end) = head_end(&self.input, scanned) {
                if end > MAX_HEAD_BYTES {
                    return Err(TOO_LONG);
                }
                let head = parse_head(&self.input[..end])?;
                self.input = self.input.slice(end..);
                return Ok(head);
            }
            if self.input.len() > MAX_HEAD_BYTES {
                return Err(TOO_LONG);
            }
            scanned = self.input.len();
            self.read_more().await?;
        }
    }

    /// Reads and discards what follows the closing boundary, within the size limit.
    async fn skip_epilogue(&mut self) -> Result<(), MultipartError> {
        self.input = Bytes::new();
        while self.read_chunk().await?.is_some() {}
        Ok(())
    }
}

fn join(a: &Bytes, b: &Bytes) -> Bytes {
    if a.is_empty() {
        return b.clone();
    }
    let mut joined = BytesMut::with_capacity(a.len() + b.len());
    joined.extend_from_slice(a);
    joined.extend_from_slice(b);
    joined.freeze()
}

/// Where `chunk`'s content ends for certain when it holds no whole delimiter: before its last
/// bytes when they are the beginning of the delimiter, else at its end. The delimiter's only CR
/// is its first byte, so only the last CR can start such a beginning.
fn held_back(chunk: &[u8], delimiter: &[u8]) -> usize {
    let from = chunk.len().saturating_sub(delimiter.len() - 1);
    match memchr::memrchr(b'\r', &chunk[from..]) {
        Some(at) if delimiter.starts_with(&chunk[from + at..]) => from + at,
        _ => chunk.len(),
    }
}

/// The length of a part's headers with their blank line, when `buf` holds them all; `scanned`
/// bytes were already searched.
fn head_end(buf: &[u8], scanned: usize) -> Option<usize> {
    if buf.starts_with(b"\r\n") {
        return Some(2);
    }
    let from = scanned.saturating_sub(3);
    memchr::memmem::find(&buf[from..], b"\r\n\r\n").map(|at| from + at + 4)
}

fn parse_head(raw: &[u8]) -> Result<PartHead, MultipartError> {
    let mut storage = [httparse::EMPTY_HEADER; MAX_PART_HEADERS];
    let headers = match httparse::parse_headers(raw, &mut storage) {
        Ok(httparse::Status::Complete((_, headers))) => headers,
        Err(httparse::Error::TooManyHeaders) => {
            return Err(MultipartError::Malformed("a part has too many headers"))
        }
        Ok(httparse::Status::Partial) | Err(_) => {
            return Err(MultipartError::Malformed("a part's headers cannot be read"))
        }
    };
    let mut disposition = None;
    let mut content_type = None;
    for header in headers.iter() {
        if header.name.eq_ignore_ascii_case("content-disposition") {
            if disposition.replace(header.value).is_some() {
                return Err(MultipartError::Malformed(
                    "a part has two Content-Disposition headers",
                ));
            }
        } else if header.name.eq_ignore_ascii_case("content-type") {
            content_type = Some(header.value);
        }
    }
    let disposition = disposition
        .and_then(|v| HeaderValue::from_bytes(v).ok())
        .and_then(|v| ContentDisposition::from_raw(&v).ok())
        .filter(ContentDisposition::is_form_data)
        .ok_or(MultipartError::Malformed(
            "a part has no Content-Disposition: form-data header",
        ))?;
    let name = disposition
        .get_name()
        .ok_or(MultipartError::Malformed("a part has no name"))?
        .to_owned();
    let content_type = content_type
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<mime::Mime>().ok());
    if content_type
        .as_ref()
        .is_some_and(|m| m.type_() == mime::MULTIPART)
    {
        return Err(MultipartError::Malformed(
            "a part is itself multipart, which is not supported",
        ));
    }
    Ok(PartHead {
        name,
        filename: disposition.get_filename().map(str::to_owned),
        content_type: content_type.map(|m| m.essence_str().to_owned()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    type Parts = Vec<(PartHead, Vec<u8>)>;

    /// Reads `body` given in chunks of the sizes `sizes` yields (the last chunk takes the rest).
    fn read_in_chunks(
        body: &[u8],
        boundary: &str,
        max: u64,
        mut sizes: impl FnMut() -> usize,
    ) -> Result<Parts, MultipartError> {
        let mut chunks = Vec::new();
        let mut at = 0;
        while at < body.len() {
            let n = sizes().clamp(1, body.len() - at);
            chunks.push(Ok::<_, std::io::Error>(Bytes::copy_from_slice(
                &body[at..at + n],
            )));
            at += n;
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut reader =
                MultipartReader::new(futures_util::stream::iter(chunks), boundary, max);
            let mut parts = Vec::new();
            while let Some(head) = reader.next_part().await? {
                let mut content = Vec::new();
                while let Some(piece) = reader.next_chunk().await? {
                    assert!(!piece.is_empty());
                    content.extend_from_slice(&piece);
                }
                parts.push((head, content));
            }
            Ok(parts)
        })
    }

    fn read_whole(body: &[u8], boundary: &str) -> Result<Parts, MultipartError> {
        read_in_chunks(body, boundary, u64::MAX, || usize::MAX)
    }

    fn text(name: &str) -> PartHead {
        PartHead {
            name: name.to_owned(),
            filename: None,
            content_type: None,
        }
    }

    /// A body with a text part, a file whose bytes hold near-delimiters and CRs, and an empty
    /// file part.
    fn sample() -> (Vec<u8>, Parts) {
        let mut file = Vec::new();
        for i in 0..5000u32 {
            file.extend_from_slice(&i.to_le_bytes());
            file.extend_from_slice(match i % 7 {
                0 => b"\r\n--XyZ9".as_slice(),
                1 => b"\r\n--XyZ".as_slice(),
                2 => b"\r\r\n-".as_slice(),
                3 => b"--XyZ9abc\r\n".as_slice(),
                _ => b"\r".as_slice(),
            });
        }
        let mut body = Vec::new();
        body.extend_from_slice(b"--XyZ9abc\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n");
        body.extend_from_slice(b"hello\r\nworld");
        body.extend_from_slice(b"\r\n--XyZ9abc\r\nContent-Disposition: form-data; name=\"f\"; ");
        body.extend_from_slice(b"filename=\"r\xc3\xa9sum\xc3\xa9.bin\"\r\n");
        body.extend_from_slice(b"Content-Type: Application/Octet-Stream; x=1\r\n\r\n");
        body.extend_from_slice(&file);
        body.extend_from_slice(b"\r\n--XyZ9abc\r\nContent-Disposition: form-data; name=\"e\"; ");
        body.extend_from_slice(b"filename=\"\"\r\n\r\n\r\n--XyZ9abc--\r\n");
        let expected = vec![
            (text("a"), b"hello\r\nworld".to_vec()),
            (
                PartHead {
                    name: "f".to_owned(),
                    filename: Some("résumé.bin".to_owned()),
                    content_type: Some("application/octet-stream".to_owned()),
                },
                file,
            ),
            (
                PartHead {
                    name: "e".to_owned(),
                    filename: Some(String::new()),
                    content_type: None,
                },
                Vec::new(),
            ),
        ];
        (body, expected)
    }

    #[test]
    fn reads_parts_whole_and_in_any_chunking() {
        let (body, expected) = sample();
        assert_eq!(read_whole(&body, "XyZ9abc").unwrap(), expected);
        for size in [1, 2, 3, 7, 13, 64, 4096] {
            let parts = read_in_chunks(&body, "XyZ9abc", u64::MAX, || size).unwrap();
            assert_eq!(parts, expected, "chunks of {size}");
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for round in 0..200 {
            let parts =
                read_in_chunks(&body, "XyZ9abc", u64::MAX, || rng.gen_range(1..40)).unwrap();
            assert_eq!(parts, expected, "random chunking, round {round}");
        }
    }

    #[test]
    fn hands_out_slices_of_large_chunks() {
        let mut body =
            b"--b\r\nContent-Disposition: form-data; name=\"f\"; filename=\"x\"\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'\r', 1 << 20));
        body.extend_from_slice(b"\r\n--b--");
        let parts = read_in_chunks(&body, "b", u64::MAX, || 256 * 1024).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].1.len(), 1 << 20);
        assert!(parts[0].1.iter().all(|&b| b == b'\r'));
    }

    #[test]
    fn skips_preamble_padding_and_epilogue() {
        let body = b"preamble\r\n--b \t\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--  \r\nepilogue";
        assert_eq!(
            read_whole(body, "b").unwrap(),
            vec![(text("x"), b"1".to_vec())]
        );
        let no_final_break = b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--";
        assert_eq!(
            read_whole(no_final_break, "b").unwrap(),
            vec![(text("x"), b"1".to_vec())]
        );
        // A part's own Content-Length is not trusted: the boundary ends it.
        let lying = b"--b\r\nContent-Disposition: form-data; name=x\r\nContent-Length: 1\r\n\r\n123\r\n--b--";
        assert_eq!(
            read_whole(lying, "b").unwrap(),
            vec![(text("x"), b"123".to_vec())]
        );
    }

    #[test]
    fn refuses_what_is_not_form_data() {
        let malformed = |body: &[u8]| match read_whole(body, "b") {
            Err(MultipartError::Malformed(why)) => why,
            other => panic!("{other:?}"),
        };
        assert_eq!(malformed(b"garbage"), "the body has no boundary");
        assert!(malformed(b"--b\r\n\r\nno headers\r\n--b--").contains("no Content-Disposition"));
        assert!(
            malformed(b"--b\r\nContent-Disposition: attachment; name=x\r\n\r\n\r\n--b--")
                .contains("no Content-Disposition")
        );
        assert!(
            malformed(b"--b\r\nContent-Disposition: form-data\r\n\r\n\r\n--b--")
                .contains("no name")
        );
        assert!(malformed(
            b"--b\r\nContent-Disposition: form-data; name=x\r\nContent-Disposition: form-data; name=y\r\n\r\n\r\n--b--"
        )
        .contains("two"));
        assert!(malformed(
            b"--b\r\nContent-Disposition: form-data; name=x\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n\r\n--b--"
        )
        .contains("multipart"));
        assert!(
            malformed(b"--bc\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n--b--")
                .contains("other text")
        );
        assert!(malformed(b"--b\r\nbad header line\r\n\r\n\r\n--b--").contains("cannot be read"));
        let many = format!("--b\r\n{}\r\n\r\n--b--", "X-A: 1\r\n".repeat(17));
        assert!(malformed(many.as_bytes()).contains("too many headers"));
        let long = format!(
            "--b\r\nX-A: {}\r\n\r\n\r\n--b--",
            "a".repeat(MAX_HEAD_BYTES)
        );
        assert!(malformed(long.as_bytes()).contains("longer than 8 KiB"));
        let padded = format!("--b{}\r\n", " ".repeat(MAX_PADDING + 1));
        assert!(malformed(padded.as_bytes()).contains("other text"));
    }

    #[test]
    fn a_body_cut_short_is_truncated() {
        let (body, _) = sample();
        // Every cut after the first boundary line, at every kind of place.
        for cut in (12..body.len() - 2)
            .step_by(997)
            .chain([body.len() - 3, 40, 60, 80])
        {
            let result = read_in_chunks(&body[..cut], "XyZ9abc", u64::MAX, || 5);
            assert_eq!(result, Err(MultipartError::Truncated), "cut at {cut}");
        }
    }

    #[test]
    fn the_size_limit_counts_every_byte_read() {
        let (body, _) = sample();
        let len = body.len() as u64;
        assert!(read_in_chunks(&body, "XyZ9abc", len, || 100).is_ok());
        assert_eq!(
            read_in_chunks(&body, "XyZ9abc", len - 1, || 100),
            Err(MultipartError::TooLarge)
        );
        // An endless epilogue is refused too.
        let mut tail = b"--b\r\nContent-Disposition: form-data; name=x\r\n\r\n1\r\n--b--".to_vec();
        tail.extend(std::iter::repeat_n(b'e', 10_000));
        assert_eq!(
            read_in_chunks(&tail, "b", 5_000, || 100),
            Err(MultipartError::TooLarge)
        );
    }

    #[test]
    fn boundary_comes_from_the_content_type() {
        let value = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(
            boundary(Some(&value("multipart/form-data; boundary=abc"))).unwrap(),
            "abc"
        );
        assert_eq!(
            boundary(Some(&value("multipart/form-data; boundary=\"a b:c\""))).unwrap(),
            "a b:c"
        );
        let long = format!(
            "multipart/form-data; boundary={}",
            "a".repeat(MAX_BOUNDARY + 1)
        );
        for refused in [
            "multipart/form-data",
            "multipart/form-data; boundary=\"\"",
            "text/plain; boundary=abc",
            long.as_str(),
        ] {
            let header = HeaderValue::from_str(refused).unwrap();
            assert_eq!(
                boundary(Some(&header)),
                Err(MultipartError::NoBoundary),
                "{refused}"
            );
        }
        assert_eq!(boundary(None), Err(MultipartError::NoBoundary));
    }
}
