//! whole PDFs (src/ingest/pdf: sniff, the pre-scan, lopdf's loader, the AcroForm walk, text
//! decoding).
//! Properties: refusals are 4xx with a code; the raw output is bounded by the input and the
//! decompression budget (check::pdf_output_bounded); after the HTTP layer's field limits, the
//! limits hold and the fields survive a JSON round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use secureform_fuzz::adapt::{self, Caps};
use secureform_fuzz::{check, Input};

fuzz_target!(|data: &[u8]| {
    let mut input = Input::new(data);
    let caps = Caps::from_input(&mut input);
    let body = input.rest();
    // Sniffing looks at most at the first 8 KiB and never fails; a body it calls a PDF must be
    // one whose first 1029 bytes hold `%PDF-`.
    if adapt::sniff(body) == Some(secureform::ingest::pdf::PdfKind::Pdf) {
        let head = &body[..body.len().min(1029)];
        assert!(
            head.windows(5).any(|w| w == b"%PDF-"),
            "sniffed as PDF without %PDF-"
        );
    }
    check::pdf_family(adapt::pdf(body, &caps), body.len(), &caps);
});
