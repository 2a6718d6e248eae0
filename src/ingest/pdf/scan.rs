//! The pre-scan that enforces the caps lopdf cannot.
//!
//! lopdf 0.47 bounds each stream it inflates while loading and the nesting its parser accepts
//! (100), but not the total over all streams, nor the number of objects, nor how often an
//! object stream's members overlap (an index pointing every member into one large array makes
//! lopdf parse, and hold, that array once per member). So before lopdf sees a body, one linear
//! pass over the raw syntax counts indirect objects, measures nesting depth, and inflates every
//! object stream and cross-reference stream, under the total decompression budget, to count
//! their members and check that no member's syntax runs into the next one.

use flate2::{Decompress, FlushDecompress, Status};

use super::limits::Budget;
use super::{find, PdfFormError};

/// How far back from a `stream` keyword its dictionary is looked for.
const MAX_DICT: usize = 64 * 1024;

/// Most values (numbers, names, strings, keywords, arrays and dictionaries) in one object.
/// lopdf holds each value in 120 bytes or more, and parses an object whole: 13 MB of one array
/// of zeros took 1.6 GB. Real forms' largest objects (page annotation lists, a CJK font's
/// widths, a list's options) hold tens of thousands; a reference counts three.
const MAX_OBJECT_VALUES: usize = 1 << 18;

/// One lexical unit of PDF syntax, as far as the pre-scan cares.
#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Open,
    Close,
    /// A string, name or comment: skipped whole.
    Skipped,
    /// A run of regular characters: a number or a keyword.
    Word,
    Space,
}

fn is_delimiter(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

fn is_space(b: u8) -> bool {
    matches!(b, 0 | 9 | 10 | 12 | 13 | 32)
}

/// The token at `i` and the position after it (`i < b.len()`).
fn token(b: &[u8], i: usize) -> (Tok, usize) {
    let at = |j: usize| b.get(j).copied();
    match b.get(i).copied().unwrap_or(b' ') {
        b'[' => (Tok::Open, i + 1),
        b']' => (Tok::Close, i + 1),
        b'<' if at(i + 1) == Some(b'<') => (Tok::Open, i + 2),
        b'>' if at(i + 1) == Some(b'>') => (Tok::Close, i + 2),
        b'<' => {
            let end = b[i..]
                .iter()
                .position(|&c| c == b'>')
                .map_or(b.len(), |p| i + p + 1);
            (Tok::Skipped, end)
        }
        b'(' => (Tok::Skipped, literal_string_end(b, i)),
        b'%' => {
            let end = b[i..].iter().position(|&c| c == b'\n' || c == b'\r');
            (Tok::Skipped, end.map_or(b.len(), |p| i + p))
        }
        b'/' => {
            let end = b[i + 1..]
                .iter()
                .position(|&c| is_space(c) || is_delimiter(c));
            (Tok::Skipped, end.map_or(b.len(), |p| i + 1 + p))
        }
        c if is_space(c) || is_delimiter(c) => (Tok::Space, i + 1),
        _ => {
            let end = b[i..].iter().position(|&c| is_space(c) || is_delimiter(c));
            (Tok::Word, end.map_or(b.len(), |p| i + p))
        }
    }
}

/// The end of the literal string opening at `i`: balanced parentheses, backslash escapes.
fn literal_string_end(b: &[u8], i: usize) -> usize {
    let mut depth = 0usize;
    let mut j = i;
    while let Some(&c) = b.get(j) {
        match c {
            b'\\' => j += 1,
            b'(' => depth += 1,
            b')' => {
                depth -= 1;
                if depth == 0 {
                    return j + 1;
                }
            }
            _ => {}
        }
        j += 1;
    }
    b.len()
}

/// Pre-scans a PDF or FDF body: object count, nesting depth, object and cross-reference streams.
pub(crate) fn prescan(b: &[u8], budget: &mut Budget<'_>) -> Result<(), PdfFormError> {
    let limits = budget.limits;
    let mut objects = 0usize;
    let mut depth = 0usize;
    let mut obj_start = 0usize;
    // Values in the current object (`None` outside one: the cross-reference table's rows).
    let mut values: Option<usize> = None;
    let mut i = 0usize;
    while i < b.len() {
        budget.tick()?;
        let (tok, end) = token(b, i);
        if let (Some(n), Tok::Open | Tok::Word | Tok::Skipped) = (values.as_mut(), &tok) {
            *n += 1;
            if *n > MAX_OBJECT_VALUES {
                return Err(PdfFormError::TooManyObjects);
            }
        }
        match tok {
            Tok::Open => {
                depth += 1;
                if depth > limits.max_depth {
                    return Err(PdfFormError::TooDeep);
                }
            }
            Tok::Close => depth = depth.saturating_sub(1),
            Tok::Word => match &b[i..end] {
                b"obj" => {
                    objects += 1;
                    depth = 0;
                    obj_start = end;
                    values = Some(0);
                }
                b"endobj" => {
                    depth = 0;
                    values = None;
                }
                b"stream" => {
                    // The stream's dictionary, as far back as its object's header (bounded, so
                    // that a file of many streams in one object stays linear to scan).
                    let from = obj_start.max(i.saturating_sub(MAX_DICT));
                    let dict = b.get(from..i).unwrap_or_default();
                    let data_end = stream(b, dict, end, budget, &mut objects)?;
                    i = data_end.max(end);
                    obj_start = i;
                    values = None;
                    continue;
                }
                _ => {}
            },
            Tok::Skipped | Tok::Space => {}
        }
        if objects > limits.max_objects {
            return Err(PdfFormError::TooManyObjects);
        }
        i = end;
    }
    Ok(())
}

/// Handles the stream whose keyword ends at `after_keyword`; returns where its data ends.
fn stream(
    b: &[u8],
    dict: &[u8],
    after_keyword: usize,
    budget: &mut Budget<'_>,
    objects: &mut usize,
) -> Result<usize, PdfFormError> {
    let mut start = after_keyword;
    if b.get(start) == Some(&b'\r') {
        start += 1;
    }
    if b.get(start) == Some(&b'\n') {
        start += 1;
    }
    let rest = b.get(start..).unwrap_or_default();
    let by_length = int_after(dict, b"/Length")
        .and_then(|len| start.checked_add(len))
        .filter(|&end| {
            let tail = b.get(end..).unwrap_or_default();
            let skip = tail.iter().take_while(|&&c| is_space(c)).count();
            tail.get(skip..)
                .is_some_and(|t| t.starts_with(b"endstream"))
        });
    let end = by_length
        .or_else(|| find(rest, b"endstream").map(|p| start + p))
        .unwrap_or(b.len());
    let data = b.get(start..end).unwrap_or_default();
    let object_stream = find(dict, b"/ObjStm").is_some();
    let xref_stream = find(dict, b"/XRef").is_some();
    if (object_stream || xref_stream) && find(dict, b"/FlateDecode").is_some() {
        let content = inflate(data, budget, object_stream)?;
        if object_stream {
            *objects += object_stream_members(&content, dict, budget)?;
        }
    }
    Ok(end)
}

/// The non-negative integer that follows `key` in `dict`, unless it is an indirect reference.
fn int_after(dict: &[u8], key: &[u8]) -> Option<usize> {
    let mut at = find(dict, key)? + key.len();
    let next_int = |from: usize| -> Option<(usize, usize)> {
        let skip = dict
            .get(from..)?
            .iter()
            .take_while(|&&c| is_space(c))
            .count();
        let s = from + skip;
        let digits = dict
            .get(s..)?
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        let n = std::str::from_utf8(dict.get(s..s + digits)?)
            .ok()?
            .parse()
            .ok()?;
        Some((n, s + digits))
    };
    let (n, end) = next_int(at)?;
    at = end;
    // "12 0 R" is a reference, not a length.
    if let Some((_, after_gen)) = next_int(at) {
        let skip = dict
            .get(after_gen..)?
            .iter()
            .take_while(|&&c| is_space(c))
            .count();
        if dict.get(after_gen + skip) == Some(&b'R') {
            return None;
        }
    }
    Some(n)
}

/// Inflates a zlib stream under the budget, keeping the output only when asked to. Data that
/// is not zlib (encrypted, or damaged) inflates to what it inflates to, maybe nothing: lopdf's
/// per-stream bound still applies to it.
fn inflate(data: &[u8], budget: &mut Budget<'_>, keep: bool) -> Result<Vec<u8>, PdfFormError> {
    let mut z = Decompress::new(true);
    let mut kept = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        budget.check_time()?;
        let consumed = usize::try_from(z.total_in()).unwrap_or(usize::MAX);
        let input = data.get(consumed..).unwrap_or_default();
        let before = z.total_out();
        let status = z.decompress(input, &mut buf, FlushDecompress::None);
        let produced = z.total_out() - before;
        budget.take_decompressed(produced)?;
        if keep {
            let n = usize::try_from(produced).unwrap_or(0);
            kept.extend_from_slice(buf.get(..n).unwrap_or_default());
        }
        let progressed = produced > 0 || usize::try_from(z.total_in()).ok() != Some(consumed);
        match status {
            Ok(Status::Ok | Status::BufError) if progressed => {}
            _ => return Ok(kept),
        }
    }
}

/// Counts an object stream's members, and checks that each member's syntax ends before the
/// next member begins and nests no deeper than allowed.
fn object_stream_members(
    content: &[u8],
    dict: &[u8],
    budget: &mut Budget<'_>,
) -> Result<usize, PdfFormError> {
    let Some(first) = int_after(dict, b"/First") else {
        return Ok(0);
    };
    let Some(index) = content.get(..first) else {
        return Ok(0);
    };
    let numbers: Vec<usize> = index
        .split(|&c| is_space(c))
        .filter_map(|w| std::str::from_utf8(w).ok()?.parse().ok())
        .collect();
    let mut offsets: Vec<usize> = numbers.chunks_exact(2).map(|p| p[1]).collect();
    let members = offsets.len();
    if members > budget.limits.max_objects {
        return Err(PdfFormError::TooManyObjects);
    }
    offsets.sort_unstable();
    if offsets.windows(2).any(|w| w[0] == w[1]) {
        return Err(PdfFormError::PdfMalformed);
    }
    let body = content.get(first..).unwrap_or_default();
    for (k, &off) in offsets.iter().enumerate() {
        let end = offsets
            .get(k + 1)
            .copied()
            .unwrap_or(body.len())
            .min(body.len());
        let region = body.get(off.min(end)..end).unwrap_or_default();
        check_member(region, budget)?;
    }
    Ok(members)
}

/// The first object in `region` must close inside it, within the depth and value limits.
fn check_member(region: &[u8], budget: &mut Budget<'_>) -> Result<(), PdfFormError> {
    let mut depth = 0usize;
    let mut values = 0usize;
    let mut i = 0usize;
    while i < region.len() {
        budget.tick()?;
        let (tok, end) = token(region, i);
        if matches!(tok, Tok::Open | Tok::Word | Tok::Skipped) {
            values += 1;
            if values > MAX_OBJECT_VALUES {
                return Err(PdfFormError::TooManyObjects);
            }
        }
        match tok {
            Tok::Open => {
                depth += 1;
                if depth > budget.limits.max_depth {
                    return Err(PdfFormError::TooDeep);
                }
            }
            Tok::Close => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return Ok(());
                }
            }
            Tok::Word | Tok::Skipped if depth == 0 => return Ok(()),
            _ => {}
        }
        i = end;
    }
    if depth > 0 {
        // The member runs into the next one (or off the end): lopdf would parse it again
        // for every member it swallows.
        return Err(PdfFormError::PdfMalformed);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::PdfLimits;
    use super::*;

    fn scan(b: &[u8], limits: &PdfLimits) -> Result<(), PdfFormError> {
        prescan(b, &mut Budget::new(limits))
    }

    #[test]
    fn counts_objects_and_depth() {
        let limits = PdfLimits {
            max_objects: 2,
            max_depth: 3,
            ..PdfLimits::default()
        };
        assert_eq!(
            scan(b"1 0 obj [[[1]]] endobj 2 0 obj (x[[[[) endobj", &limits),
            Ok(())
        );
        assert_eq!(
            scan(b"1 0 obj [[[[1]]]] endobj", &limits),
            Err(PdfFormError::TooDeep)
        );
        let three = b"1 0 obj 1 endobj 2 0 obj 2 endobj 3 0 obj /obj endobj 4 0 obj 4 endobj";
        assert_eq!(scan(three, &limits), Err(PdfFormError::TooManyObjects));
    }

    #[test]
    fn many_streams_scan_in_linear_time() {
        let mut body = b"%PDF-1.7\n1 0 obj\n<< >>\n".to_vec();
        for _ in 0..500_000 {
            body.extend_from_slice(b"stream\nx\nendstream\n");
        }
        let start = std::time::Instant::now();
        assert_eq!(scan(&body, &PdfLimits::default()), Ok(()));
        // A bound for a hang, not a speed test: linear takes well under a second in a release
        // build and a few in a debug build on a busy machine; quadratic would take hours.
        assert!(
            start.elapsed() < std::time::Duration::from_secs(60),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn lengths_and_references() {
        assert_eq!(int_after(b"<< /Length 42 >>", b"/Length"), Some(42));
        assert_eq!(int_after(b"<< /Length 12 0 R >>", b"/Length"), None);
        assert_eq!(int_after(b"<< /First 7/N 2 >>", b"/First"), Some(7));
    }

    #[test]
    fn overlapping_members_are_refused() {
        let limits = PdfLimits::default();
        let mut budget = Budget::new(&limits);
        let ok = b"1 0 2 4 [1] [2]";
        assert_eq!(object_stream_members(ok, b"/First 8", &mut budget), Ok(2));
        let bad = b"1 0 2 1 [[1] [2]]";
        let got = object_stream_members(bad, b"/First 8", &mut budget);
        assert_eq!(got, Err(PdfFormError::PdfMalformed));
    }
}
