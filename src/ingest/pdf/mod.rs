//! PDF form posts: FDF, XFDF and the whole PDF, read into [`Fields`].
//!
//! When a user presses a Submit button in Acrobat or Reader, the SubmitForm action's flags
//! (ISO 32000-1, 12.7.5.2, table 237) choose the body: FDF (`application/vnd.fdf`), XFDF
//! (`application/vnd.adobe.xfdf`), the whole PDF (`application/pdf`), or Acrobat's HTML format
//! (urlencoded, decoded elsewhere). This module holds pure functions over the body's bytes:
//! [`sniff`] says what a body is (clients mislabel bodies), [`parse_fdf`], [`parse_xfdf`] and
//! [`parse_pdf`] read its fields, and [`fdf_status_body`] writes the FDF answer whose `/Status`
//! Acrobat shows the user. Nothing here knows HTTP, and nothing here logs a value.
//!
//! # How form fields become submission fields
//! The same form yields the same fields whichever of the four formats Acrobat sent, because
//! every reader follows what ISO 32000-1 (12.7.5.2) says Acrobat submits: *the fully qualified
//! name of each field, with the value of its `/V` entry; fields with no value are not sent*.
//! - **Names**: the partial names (`/T`) of a field and its ancestors joined with `.`
//!   (`person.address.city`); widgets without `/T` carry their parent's name. Text strings are
//!   PDFDocEncoding, UTF-16BE with BOM or UTF-8 with BOM (`text::decode_pdf_text_checked`).
//! - **Text, multiline, combo boxes, single-select lists**: one text value. An **empty text
//!   field** whose `/V` is the empty string yields `""`; a field that was never filled in (no
//!   `/V`) is absent: the same line 12.7.5.2 draws for what Acrobat submits (a field with an
//!   empty value is sent, a field with no value is not).
//! - **Multi-select lists** (field flag MultiSelect): always a list, even of one value, so a
//!   consumer never has to guess; a PDF list with `/V []` yields an empty list. (FDF and XFDF
//!   carry no flags: there one selected item arrives as one value, several as a list.)
//! - **Checkboxes and radio groups**: the name in `/V` (its `#xx` escapes undone, read as UTF-8).
//!   An **unchecked checkbox or unset radio group** yields `"Off"` when the form holds `/V /Off`
//!   (what Acrobat writes once a box has been toggled, and so submits as its value), and is
//!   **absent** when the field has no `/V` (never touched: a valueless field is not submitted). We mirror `/V` rather than invent a value, so that an FDF, an XFDF and a PDF
//!   post of the same filled form agree, and the corpus readings of pypdf, pdftk and qpdf agree.
//! - **Export values through `/Opt`**: when a checkbox or radio field has `/Opt` and its state
//!   name is an index into it (ISO 32000-1, 12.7.4.2.3-4), the value is the `/Opt` text at that
//!   index (`"Marcus Aurelius"`, not `"0"`): the export value, which is what Acrobat's HTML
//!   format sends. pypdf and qpdf report the raw index here; pdftk, like us, the export value.
//! - **Omitted**: pushbuttons (the submit button's own `/T`, sent with no value, included),
//!   signature fields, and fields with no value at all.
//! - **Values held in streams** (long text): the stream's text, decompressed under the limits.
//! - **A name seen twice** (two field dictionaries with one fully qualified name are one field,
//!   ISO 32000-1 12.7.3.2): the first occurrence wins, in the field tree's document order.
//! - **Inherited values** (`/V` is inheritable, ISO 32000-1 table 220): a terminal field
//!   reports its own `/V`. Only when it has none does it take the nearest ancestor's, and
//!   only when that value fills something in (not `()`, not `[]`) and the field is not a
//!   button. A button never takes a text string, its own or inherited: its value is a name
//!   (12.7.4.2.3). Why: form converters write `/V ()` on the root of a whole form, which no
//!   user filled and which would otherwise give hundreds of untouched fields, radio groups
//!   included, a `""`; whereas a non-empty value on a parent is a value somebody set for the
//!   fields under it, which a conforming viewer shows in each of them. pypdf
//!   (`get_fields`), pdftk (`dump_data_fields`) and qpdf (`--json`) never inherit `/V`; we
//!   differ from them only for a non-empty ancestor value, which no corpus form has.
//! - **XFA hybrids** (AcroForm fields and XFA) are read through their AcroForm; the XFA
//!   stream is ignored (Acrobat keeps both in step).
//! - **XFA-only forms** (`/Fields` empty or absent, an `/XFA` entry: a dynamic XFA form) are
//!   read from the XFA `datasets` packet (the packet named `datasets` when `/XFA` is an array
//!   of name/stream pairs, else the `xfa:datasets` element of the one XDP stream). Each element
//!   under `xfa:data` holding text is a field named by its data path, the element names from
//!   the top joined with `.` (`form1.page1.name`); elements that share a name under one parent
//!   (repeated subforms or fields) get XFA's SOM index on each (`form1.item[0].qty`,
//!   `form1.item[1].qty`); rich text (`xfa:contentType`) is one value, its text. An empty
//!   element is a field never filled in (XFA writes one for every bound field) and is absent.
//!   An XFA-only form with no filled value is refused (422 `xfa_only`), so that nothing is
//!   accepted empty; a packet that is not well-formed UTF-8 XML, or has a DTD, is 400
//!   `xfa_malformed`. The packet is parsed like XFDF (roxmltree, DTDs refused, a node limit)
//!   under the same budget of time, depth, fields and decompressed bytes.
//! - **Encrypted PDFs** are read when the user password is empty (RC4, AESv2, AESv3, as lopdf
//!   decrypts them); any other password is refused with `pdf_encrypted`.
//!
//! Where pypdf, pdftk and qpdf disagree on the real-world corpus we decide by ISO 32000:
//! `/Opt` export values (above; pdftk agrees); PDFDocEncoding bytes 0x18–0x1F are the
//! diacritics ˘ˇˆ˙˝˛˚˜ (pdftk keeps them as control characters); other control bytes are kept
//! as they are (qpdf shows them as hex); a UTF-8 BOM marks UTF-8 (pdftk shows `ï»¿`); a value
//! held in a stream is its text (qpdf shows the stream); a checkbox whose field has no `/V` is
//! absent even when its widgets carry `/V /Off` (pypdf agrees; pdftk and qpdf say `Off`); a
//! signature field is omitted (pypdf and qpdf show the signature dictionary); kids with a `/T`
//! are fields of their own, named `parent.kid`, even when they repeat the parent's name.
//! Where all three agree and we differ: a multi-select list with one item is a list of one.
//! The corpus test lists each case.
//!
//! # Hostile input
//! Every parse runs under [`PdfLimits`]: body size, object count (counted before lopdf loads
//! anything, including objects packed in object streams), nesting depth (a pre-scan of the raw
//! syntax, and the field-tree walk), total decompressed bytes (object and cross-reference
//! streams inflated and counted by the pre-scan, then lopdf's own per-stream bound, then
//! value streams), field count, and parse time, checked as the work goes; the caller should
//! still run the parse on a blocking thread under a timeout. Reference cycles in the field
//! tree are refused. Each refusal is a [`PdfFormError`] with a 4xx status and a stable code.
//! A file that does not end with `%%EOF` (in its last 1024 bytes) is refused as cut short. In
//! an encrypted PDF the object streams are ciphertext to the pre-scan: there lopdf's per-stream
//! bound and the object count after loading are what apply.
//! XFDF is parsed by roxmltree, which refuses any DTD: no entities, no external references.
//!
//! A whole PDF is loaded keeping only what its form is read from: objects of the types fields
//! never lead to (fonts, images, appearance streams, the structure tree...) are dropped while
//! lopdf loads, and from the rest every dictionary entry the walk does not read
//! (`load::keep_form_objects`). A loaded object costs about 25 times its bytes; this cut one
//! parse of a 4.5 MB, 42,700-object form from 113 to 42 MiB. lopdf holds every value in 120
//! bytes or more, so the values one object may hold (the pre-scan counts them) and the values
//! the filtered load keeps are capped too (`pdf_too_many_objects`): 13 MB of one array of
//! zeros had taken 1.6 GB. The HTTP layer adds the overall
//! bound: a memory budget every parse reserves from, and a few dedicated parse threads
//! (`src/http/pdf_gate.rs`).
//!
//! What a parse *produces* is bounded too, as it is produced ([`PdfLimits::output`], through
//! [`crate::ingest::bounded::FieldsBuilder`]): each fully qualified name is measured as it is
//! joined (before a deeper name is built), each value before it is decoded, every value counts,
//! and all names and values together are bounded, so one string referenced by thousands of
//! fields is refused instead of copied thousands of times. A text that is not valid UTF-16 or
//! UTF-8 is kept with U+FFFD and reported as a warning ([`read_pdf`], [`read_fdf`]).

mod acroform;
mod fdf;
mod limits;
mod load;
mod scan;
mod text;
mod xfa;
mod xfdf;

pub use acroform::{parse_pdf, read_pdf};
pub use fdf::{fdf_status_body, parse_fdf, read_fdf};
/// Public for the fuzz targets (fuzz/), which call it directly.
pub use text::decode_pdf_text_checked;
pub use xfdf::{parse_xfdf, read_xfdf};

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::time::Duration;

use super::bounded::{OutputError, OutputLimits};

/// Caps against hostile bodies. The defaults suit real forms with a wide margin.
#[derive(Clone, Debug)]
pub struct PdfLimits {
    /// Largest body parsed, in bytes (default 20 MiB; the HTTP layer also caps the body).
    pub max_bytes: usize,
    /// Most indirect objects, counting those inside object streams (default 100,000).
    pub max_objects: usize,
    /// Deepest nesting of arrays and dictionaries, of the field tree, and of XFDF fields
    /// (default 64).
    pub max_depth: usize,
    /// Most bytes decompressed in total over the whole parse (default 64 MiB).
    pub max_decompressed: u64,
    /// Most fields in one submission (default 10,000).
    pub max_fields: usize,
    /// Longest a parse may take (default 5 s).
    pub max_parse_time: Duration,
    /// What the parse may produce: values, name and value sizes, and their total, counted as
    /// names are joined and values decoded (default: 10,000 values, names of 256 bytes, and
    /// 20 MiB for one value and for all together; the service passes its `[limits]`).
    pub output: OutputLimits,
}

impl Default for PdfLimits {
    fn default() -> Self {
        PdfLimits {
            max_bytes: 20 * 1024 * 1024,
            max_objects: 100_000,
            max_depth: 64,
            max_decompressed: 64 * 1024 * 1024,
            max_fields: 10_000,
            max_parse_time: Duration::from_secs(5),
            output: OutputLimits {
                max_values: 10_000,
                max_name_bytes: 256,
                max_value_bytes: 20 * 1024 * 1024,
                max_total_bytes: 20 * 1024 * 1024,
            },
        }
    }
}

/// Why a body was refused. Carries no field value, name or content: only the reason.
#[derive(Debug, thiserror::Error, Clone, Copy, PartialEq, Eq)]
pub enum PdfFormError {
    /// The PDF could not be read.
    #[error("the PDF could not be read")]
    PdfMalformed,
    /// The FDF could not be read, or has no `/FDF` dictionary.
    #[error("the FDF could not be read")]
    FdfMalformed,
    /// The XFDF is not well-formed XML, or not XFDF.
    #[error("the XFDF could not be read")]
    XfdfMalformed,
    /// The XFDF has a DTD (entities and external references come only through one).
    #[error("the XFDF has a DTD, which is not accepted")]
    XfdfDtdForbidden,
    /// The body is larger than [`PdfLimits::max_bytes`].
    #[error("the document is too large")]
    TooLarge,
    /// More objects than [`PdfLimits::max_objects`].
    #[error("the document has too many objects")]
    TooManyObjects,
    /// Nested deeper than [`PdfLimits::max_depth`].
    #[error("the document is nested too deeply")]
    TooDeep,
    /// Decompressing would exceed [`PdfLimits::max_decompressed`].
    #[error("the document decompresses to too much data")]
    DecompressionLimit,
    /// The field tree refers back to itself.
    #[error("the form's field tree has a reference loop")]
    ReferenceLoop,
    /// Parsing took longer than [`PdfLimits::max_parse_time`].
    #[error("the document took too long to read")]
    Timeout,
    /// More fields than [`PdfLimits::max_fields`].
    #[error("the form has too many fields")]
    TooManyFields,
    /// Encrypted with a non-empty user password.
    #[error("the PDF is encrypted with a password")]
    Encrypted,
    /// A PDF with no interactive form (`/AcroForm`).
    #[error("the PDF has no form fields")]
    NoAcroForm,
    /// An XFA-only form (no AcroForm fields) whose XFA datasets hold no filled value.
    #[error("the form keeps its data only in XFA, and no filled value could be read from it")]
    XfaOnly,
    /// The XFA datasets packet is not well-formed XML (or not UTF-8).
    #[error("the form's XFA data could not be read")]
    XfaMalformed,
    /// What the document holds is more than [`PdfLimits::output`] allows.
    #[error("{0}")]
    Output(OutputError),
}

impl From<OutputError> for PdfFormError {
    fn from(e: OutputError) -> Self {
        PdfFormError::Output(e)
    }
}

impl PdfFormError {
    /// A stable, machine-readable snake_case reason.
    pub fn code(&self) -> &'static str {
        match self {
            PdfFormError::PdfMalformed => "pdf_malformed",
            PdfFormError::FdfMalformed => "fdf_malformed",
            PdfFormError::XfdfMalformed => "xfdf_malformed",
            PdfFormError::XfdfDtdForbidden => "xfdf_dtd_forbidden",
            PdfFormError::TooLarge => "pdf_too_large",
            PdfFormError::TooManyObjects => "pdf_too_many_objects",
            PdfFormError::TooDeep => "pdf_too_deep",
            PdfFormError::DecompressionLimit => "pdf_decompression_limit",
            PdfFormError::ReferenceLoop => "pdf_reference_loop",
            PdfFormError::Timeout => "pdf_timeout",
            PdfFormError::TooManyFields => "too_many_fields",
            PdfFormError::Encrypted => "pdf_encrypted",
            PdfFormError::NoAcroForm => "no_acroform",
            PdfFormError::XfaOnly => "xfa_only",
            PdfFormError::XfaMalformed => "xfa_malformed",
            PdfFormError::Output(e) => e.code(),
        }
    }

    /// A plain sentence for the user, shown by Acrobat as the FDF `/Status`.
    pub fn message(&self) -> String {
        let hint = match self {
            PdfFormError::Encrypted => " Remove the password and submit again.",
            PdfFormError::NoAcroForm => " Submit the form from the PDF that holds it.",
            PdfFormError::XfaOnly => " Fill in the form and submit it again.",
            _ => "",
        };
        format!("The submission was refused: {self}.{hint}")
    }
}

/// What a form post's body is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PdfKind {
    /// Forms Data Format (`%FDF-`).
    Fdf,
    /// XML Forms Data Format (root in `http://ns.adobe.com/xfdf/`).
    Xfdf,
    /// A whole PDF (`%PDF-`).
    Pdf,
}

/// The XFDF namespace.
pub(crate) const XFDF_NS: &str = "http://ns.adobe.com/xfdf/";

/// Sniffs the body: `%FDF-` or `%PDF-` within the first 1024 bytes (Acrobat tolerates
/// bytes before the header there), or XML (after an optional BOM and whitespace) that names the
/// XFDF namespace early on. [`parse_xfdf`] checks the root's namespace properly.
pub fn sniff(body: &[u8]) -> Option<PdfKind> {
    let head = body.get(..body.len().min(1024 + 5)).unwrap_or(body);
    let fdf = find(head, b"%FDF-");
    let pdf = find(head, b"%PDF-");
    match (fdf, pdf) {
        (Some(f), Some(p)) => return Some(if f < p { PdfKind::Fdf } else { PdfKind::Pdf }),
        (Some(_), None) => return Some(PdfKind::Fdf),
        (None, Some(_)) => return Some(PdfKind::Pdf),
        (None, None) => {}
    }
    let text = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let start = text.iter().position(|b| !b.is_ascii_whitespace())?;
    let text = text.get(start..)?;
    let prefix = text.get(..text.len().min(8192)).unwrap_or(text);
    (text.first() == Some(&b'<') && find(prefix, XFDF_NS.as_bytes()).is_some())
        .then_some(PdfKind::Xfdf)
}

/// The first position of `needle` in `hay`.
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    memchr::memmem::find(hay, needle)
}
