//! FDF bodies (src/ingest/pdf/fdf.rs: lopdf's reader, the field tree, text decoding).
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
    check::pdf_family(adapt::fdf(body, &caps), body.len(), &caps);
});
