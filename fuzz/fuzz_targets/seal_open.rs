//! The sealed-item opener (crates/crypto/src/seal.rs) on bytes nobody sealed: whole in memory and
//! streamed in reads of fuzzer-chosen sizes. Property: every input is refused, none panics, and
//! the streamed opener hands out no byte before refusing (a forged first segment would have to
//! pass AES-GCM). Inputs that start with a real header (magic, a known key id) reach the key
//! unwrapping and the segment reader, not only the magic check.
#![no_main]

use std::io::Read;

use libfuzzer_sys::fuzz_target;
use secureform_crypto::{open, Opener};
use secureform_fuzz::{adapt, Input};

fuzz_target!(|data: &[u8]| {
    let ring = adapt::key_ring();
    let mut input = Input::new(data);
    let mode = input.byte();
    let read_size = usize::from(input.byte()) + 1;
    let mut item = Vec::new();
    if mode & 1 == 1 {
        item.extend_from_slice(b"SFS1");
        let ids = ring.ids();
        item.extend_from_slice(&ids[usize::from(mode >> 1) % ids.len()].0);
    }
    item.extend_from_slice(input.rest());
    assert!(open(&ring, b"ctx", &item).is_err(), "forged item opened");
    if let Ok(mut opener) = Opener::new(&ring, b"ctx", item.as_slice()) {
        let mut buf = vec![0u8; read_size];
        loop {
            match opener.read(&mut buf) {
                Ok(0) => panic!("forged item read to its end"),
                Ok(_) => panic!("forged item yielded plaintext"),
                Err(_) => break,
            }
        }
    }
});
