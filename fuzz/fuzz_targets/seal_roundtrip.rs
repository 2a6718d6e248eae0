//! Sealing and opening (crates/crypto/src/seal.rs) of fuzzer plaintext, repeated up to 40 times
//! so that items span several 64 KiB segments. Properties:
//! - `seal` → `open`, `Sealer` written in fuzzer-sized pieces → `open`, and `write_in_place`
//!   (the spool's path) → streamed `Opener` in fuzzer-sized reads: all give the plaintext back;
//! - the sealed size is exactly header + plaintext + one tag per segment;
//! - another context, one flipped byte anywhere, or any truncation: refused.
#![no_main]

use std::io::{self, Read, Write};

use libfuzzer_sys::fuzz_target;
use secureform_crypto::seal::SEGMENT;
use secureform_crypto::{open, seal, Opener, Sealer, SegmentSpace};
use secureform_fuzz::{adapt, Input};

const HEADER: usize = 83;
const TAG: usize = 16;

/// A Vec that lends segment space, as the spool's direct writer does.
struct Lending(Vec<u8>);

impl Write for Lending {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SegmentSpace for Lending {
    fn segment_space(&mut self, len: usize) -> io::Result<&mut [u8]> {
        let at = self.0.len();
        // Garbage, not zeros: the sealer must overwrite all of it.
        self.0.resize(at + len, 0xA5);
        let space = &mut self.0[at..];
        Ok(space)
    }
    fn segment_written(&mut self, _len: usize) -> io::Result<()> {
        Ok(())
    }
}

fn pieces(data: &[u8], sizes: &[u8]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut left = data.len();
    let mut i = 0;
    while left > 0 {
        let s = sizes.get(i % sizes.len().max(1)).copied().unwrap_or(255);
        let n = (usize::from(s) * 613 + 1).min(left);
        out.push(n);
        left -= n;
        i += 1;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let ring = adapt::key_ring();
    let mut input = Input::new(data);
    let times = usize::from(input.byte() % 40) + 1;
    let sizes = input.bytes(16).to_vec();
    let flip_at = input.in_range(usize::MAX >> 1);
    let cut_at = input.in_range(usize::MAX >> 1);
    let unit = input.rest();
    let plain: Vec<u8> = unit.repeat(if unit.is_empty() { 1 } else { times });

    let sealed = seal(&ring, b"ctx", &plain).expect("seal");
    let segments = plain.len() / SEGMENT + 1;
    assert_eq!(
        sealed.len(),
        HEADER + plain.len() + TAG * segments,
        "sealed size"
    );
    assert_eq!(
        open(&ring, b"ctx", &sealed).expect("open").as_slice(),
        &plain[..]
    );
    assert!(
        open(&ring, b"other", &sealed).is_err(),
        "opened under another context"
    );

    let mut flipped = sealed.clone();
    let at = flip_at % flipped.len();
    flipped[at] ^= 1 << (flip_at % 8);
    assert!(
        open(&ring, b"ctx", &flipped).is_err(),
        "a flipped byte at {at} went unnoticed"
    );
    let cut = cut_at % sealed.len();
    assert!(
        open(&ring, b"ctx", &sealed[..cut]).is_err(),
        "truncation to {cut} went unnoticed"
    );

    // Streamed sealing in pieces; write_in_place; streamed opening in pieces.
    let mut sealer = Sealer::new(&ring, b"ctx", Vec::new()).expect("sealer");
    let mut lending = Sealer::new(&ring, b"ctx", Lending(Vec::new())).expect("sealer");
    let mut offset = 0;
    for n in pieces(&plain, &sizes) {
        sealer.write_all(&plain[offset..offset + n]).expect("write");
        lending
            .write_in_place(&plain[offset..offset + n])
            .expect("write in place");
        offset += n;
    }
    let streamed = sealer.finish().expect("finish");
    let in_place = lending.finish().expect("finish").0;
    assert_eq!(
        open(&ring, b"ctx", &streamed).expect("open").as_slice(),
        &plain[..]
    );
    assert_eq!(in_place.len(), sealed.len(), "write_in_place sealed size");
    let mut opener = Opener::new(&ring, b"ctx", in_place.as_slice()).expect("opener");
    let mut back = Vec::new();
    let mut buf = vec![0u8; usize::from(sizes.first().copied().unwrap_or(0)) * 257 + 1];
    loop {
        let n = opener.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        back.extend_from_slice(&buf[..n]);
    }
    assert_eq!(back, plain, "write_in_place then Opener");
});
