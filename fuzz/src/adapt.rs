//! Adapters: every target reaches the code under test only through these functions, so that a
//! change of a parser's signature or of its limits is adapted here once. Each ingest adapter runs
//! what the HTTP layer runs for that format (the parser, then `check_field_limits` where
//! src/http/submit.rs applies it) and returns the fields or the refusal's (status, code).

use std::time::Duration;

use encoding_rs::Encoding;
use secureform::ingest::pdf::{self, PdfLimits};
use secureform::ingest::{self, check_field_limits};
use secureform::limits::Limits;
use secureform_contract::Fields;

/// A refusal: the HTTP status and the machine-readable code.
pub type Refusal = (u16, &'static str);

/// The limits a target runs under, chosen by the fuzzer (small, so that they are reached).
#[derive(Clone, Debug)]
pub struct Caps {
    pub max_body_bytes: usize,
    pub max_fields: usize,
    pub max_field_bytes: usize,
    /// Longest field name. `None` while the parsers have no such limit (issue 15 item 4 adds
    /// `max_name_bytes`: set it here and in [`limits`] at merge).
    pub max_name_bytes: Option<usize>,
    /// Decompressed bytes a PDF-family parse may produce.
    pub max_decompressed: u64,
}

impl Caps {
    /// Caps from four bytes of the input: up to 64 fields, values up to 4 KiB.
    pub fn from_input(input: &mut crate::Input<'_>) -> Caps {
        Caps {
            max_body_bytes: 1 << 20,
            max_fields: input.in_range(64),
            max_field_bytes: input.in_range(4096),
            max_name_bytes: None,
            max_decompressed: 16 * 1024,
        }
    }
}

/// The service's `[limits]` for `caps`.
pub fn limits(caps: &Caps) -> Limits {
    Limits {
        max_body_bytes: caps.max_body_bytes,
        max_fields: caps.max_fields,
        max_field_bytes: caps.max_field_bytes,
        ..Limits::default()
    }
}

/// The PDF-family limits the HTTP layer derives from `[limits]` (src/http/submit.rs).
pub fn pdf_limits(caps: &Caps) -> PdfLimits {
    PdfLimits {
        max_bytes: caps.max_body_bytes,
        max_fields: caps.max_fields,
        max_decompressed: caps.max_decompressed,
        // Generous: a slow input shows up as a libFuzzer timeout (-timeout), not as a refusal.
        max_parse_time: Duration::from_secs(30),
        ..PdfLimits::default()
    }
}

/// The status and code the service answers a refusal with (src/http/refusal.rs).
fn client(e: impl Into<secureform::error::ClientError>) -> Refusal {
    let e = e.into();
    (e.status.as_u16(), e.code)
}

/// `application/x-www-form-urlencoded`, with the form's charset when it has one.
pub fn urlencoded(
    body: &[u8],
    charset: Option<&'static Encoding>,
    caps: &Caps,
) -> Result<Fields, Refusal> {
    ingest::urlencoded::parse(body, charset, &limits(caps)).map_err(client)
}

/// `application/json`.
pub fn json(body: &[u8], caps: &Caps) -> Result<Fields, Refusal> {
    ingest::json::parse(body, &limits(caps)).map_err(client)
}

/// Most values (list elements counted) an accepted urlencoded body may hold. Today: four per
/// field (src/ingest/urlencoded.rs). Issue 15 item 5 ("every value counts"): adapt at merge.
pub fn max_values_urlencoded(caps: &Caps) -> Option<usize> {
    Some(caps.max_fields.saturating_mul(4))
}

/// Longest urlencoded value accepted, in bytes of UTF-8. Today the limit is checked on the bytes
/// before charset decoding, and windows-1252 takes up to 3 bytes of UTF-8 per byte (finding 1 in
/// docs/fuzzing.md): `caps.max_field_bytes` once the decoded text is what is measured.
pub fn max_value_bytes_urlencoded(caps: &Caps) -> usize {
    caps.max_field_bytes.saturating_mul(3)
}

/// Most values (array elements counted) an accepted JSON body may hold. `None` today: arrays
/// are not counted (issue 15 item 5, 2M items were accepted). Set it at merge.
pub fn max_values_json(_caps: &Caps) -> Option<usize> {
    None
}

fn pdf_refusal(e: pdf::PdfFormError) -> Refusal {
    client(e)
}

/// `application/vnd.fdf`: the parser alone (its raw output is what issue 15 item 1 bounds).
pub fn fdf(body: &[u8], caps: &Caps) -> Result<Fields, Refusal> {
    pdf::parse_fdf(body, &pdf_limits(caps)).map_err(pdf_refusal)
}

/// `application/vnd.adobe.xfdf`: the parser alone.
pub fn xfdf(body: &[u8], caps: &Caps) -> Result<Fields, Refusal> {
    pdf::parse_xfdf(body, &pdf_limits(caps)).map_err(pdf_refusal)
}

/// `application/pdf`: the pre-scan, lopdf's loader, the AcroForm walk and text decoding.
pub fn pdf(body: &[u8], caps: &Caps) -> Result<Fields, Refusal> {
    pdf::parse_pdf(body, &pdf_limits(caps)).map_err(pdf_refusal)
}

/// What src/http/submit.rs checks after a PDF-family parse.
pub fn field_limits(fields: &Fields, caps: &Caps) -> Result<(), Refusal> {
    check_field_limits(fields, &limits(caps)).map_err(client)
}

/// What a body is, as the HTTP layer sniffs it.
pub fn sniff(body: &[u8]) -> Option<pdf::PdfKind> {
    pdf::sniff(body)
}

/// A PDF text string (PDFDocEncoding, UTF-16BE or UTF-8 with BOM) as text.
pub fn pdf_text(bytes: &[u8]) -> String {
    pdf::decode_pdf_text_checked(bytes).0
}

/// One part as the multipart reader gave it: its headers and its content's pieces.
#[derive(Debug, PartialEq, Eq)]
pub struct Part {
    pub head: secureform::http::multipart::PartHead,
    pub pieces: Vec<bytes::Bytes>,
}

/// Reads a multipart body that arrives in `chunks`, as src/http/body.rs reads it; the error is
/// the reader's own.
pub fn multipart(
    chunks: Vec<bytes::Bytes>,
    boundary: &str,
    max_bytes: u64,
) -> Result<Vec<Part>, secureform::http::multipart::MultipartError> {
    use secureform::http::multipart::MultipartReader;
    let stream = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    let mut reader = MultipartReader::new(stream, boundary, max_bytes);
    block_on(async {
        let mut parts = Vec::new();
        while let Some(head) = reader.next_part().await? {
            let mut pieces = Vec::new();
            while let Some(piece) = reader.next_chunk().await? {
                pieces.push(piece);
            }
            parts.push(Part { head, pieces });
        }
        Ok(parts)
    })
}

/// Runs a future that never waits (its stream is in memory) to its end.
fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
            return value;
        }
    }
}

/// The key ring the sealing targets use: two fixed keys, the second current, so that both the
/// current and an older key are exercised.
pub fn key_ring() -> secureform_crypto::KeyRing {
    let text = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=\n\
                AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=\n";
    secureform_crypto::KeyRing::parse(text, "fuzz").expect("fixed keys parse")
}
