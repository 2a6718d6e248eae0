//! Sealing: AES-256-GCM with a fresh data key per item, wrapped by the current key-encryption
//! key, in fixed-size segments so that an item of any size is sealed and opened in constant
//! memory.
//!
//! The segmenting follows the STREAM construction (Hoang, Reyhanitabar, Rogaway, Vizár), as age
//! and Tink use it: segment *i* is encrypted under the nonce `prefix(7) ‖ i(4, big-endian) ‖
//! last(1)`, so dropping, reordering or truncating segments fails authentication. Every segment's
//! associated data is the item header plus a caller-chosen *context* (for example
//! `documents/<id>/submission`), which binds an item to its place: an item copied over another
//! does not open.
//!
//! Byte format, version 1 (all integers big-endian):
//!
//! ```text
//! magic        4   "SFS1"
//! key_id       8   id of the key-encryption key (see keys.rs)
//! wrap_nonce  12   nonce for wrapping the data key
//! wrapped_dek 48   AES-256-GCM(KEK, wrap_nonce, data key, aad = magic ‖ key_id ‖ context)
//! prefix       7   random nonce prefix for the segments
//! segment      4   plaintext bytes per segment (65536)
//! segments    ..   each segment's ciphertext ‖ 16-byte tag; all but the last hold exactly
//!                  `segment` plaintext bytes; the last holds 0..=segment and has last = 1
//! ```

use std::io::{self, Read, Write};

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use ring::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::keys::{KeyId, KeyRing};

const MAGIC: &[u8; 4] = b"SFS1";
const TAG: usize = 16;
/// Plaintext bytes per segment.
pub const SEGMENT: usize = 64 * 1024;
const HEADER: usize = 4 + 8 + 12 + 48 + 7 + 4;
/// The plaintext room a [`Sealer::new`] starts with.
const FIRST_SEGMENT_BUFFER: usize = 4096;
/// Segments per item before the counter would wrap.
const MAX_SEGMENTS: u64 = u32::MAX as u64;

/// The id of the key a sealed item was sealed under, read from the start of its header (the
/// first 12 bytes are enough); `None` when `prefix` does not start like a sealed item. Opens
/// nothing: it tells an operator which key the data needs when that key is missing.
pub fn sealed_key_id(prefix: &[u8]) -> Option<KeyId> {
    if prefix.get(..4)? != MAGIC {
        return None;
    }
    let id: [u8; 8] = prefix.get(4..12)?.try_into().ok()?;
    Some(KeyId(id))
}

/// Why an item could not be opened or sealed.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    /// The bytes do not start with a sealed item's header.
    #[error("not a sealed item (bad header)")]
    Format,
    /// The item names a key-encryption key that is not in the key ring.
    #[error("sealed under key {0}, which is not in the key ring")]
    UnknownKey(KeyId),
    /// A segment failed its GCM check: the item was altered, truncated, moved (its associated
    /// data differs) or sealed under another key.
    #[error(
        "authentication failed: the item was altered, truncated, moved or sealed under another key"
    )]
    Authentication,
    /// The item has more segments than the format can number.
    #[error("the item is too large to seal")]
    TooLarge,
    /// The operating system's random generator failed while making a data key or nonce.
    #[error("the system random generator failed")]
    Random,
    /// Reading or writing the item's bytes failed.
    #[error("I/O: {0}")]
    Io(#[from] io::Error),
}

impl From<SealError> for io::Error {
    fn from(e: SealError) -> io::Error {
        match e {
            SealError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

fn segment_nonce(prefix: &[u8; 7], counter: u32, last: bool) -> Nonce {
    let mut n = [0u8; 12];
    n[..7].copy_from_slice(prefix);
    n[7..11].copy_from_slice(&counter.to_be_bytes());
    n[11] = u8::from(last);
    Nonce::assume_unique_for_key(n)
}

fn wrap_aad(key_id: &KeyId, context: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(12 + context.len());
    aad.extend_from_slice(MAGIC);
    aad.extend_from_slice(&key_id.0);
    aad.extend_from_slice(context);
    aad
}

/// Seals everything written to it into `inner`. Call [`Sealer::finish`] at the end: an item
/// without its last segment does not open.
pub struct Sealer<W: Write> {
    inner: W,
    key: LessSafeKey,
    prefix: [u8; 7],
    counter: u64,
    aad: Vec<u8>,
    buf: Zeroizing<Vec<u8>>,
    written: u64,
}

impl<W: Write> Sealer<W> {
    /// Starts an item under the ring's current key, writing the header at once.
    ///
    /// The segment buffer starts small and moves to a whole segment's once an item proves
    /// larger: most items sealed through a stream (a submission's JSON, a small file) are a few
    /// KiB, and a 64 KiB buffer costs its zeroing on every drop.
    pub fn new(ring: &KeyRing, context: &[u8], inner: W) -> Result<Self, SealError> {
        Self::with_segment_buffer(ring, context, inner, FIRST_SEGMENT_BUFFER)
    }

    /// As [`Sealer::new`], with a segment buffer for `room` plaintext bytes (at most a whole
    /// segment). The buffer is never grown, so that no plaintext is left behind in a freed
    /// allocation; a small item that knows its size says so and spares the allocation and the
    /// zeroing of a whole 64 KiB segment.
    fn with_segment_buffer(
        ring: &KeyRing,
        context: &[u8],
        mut inner: W,
        room: usize,
    ) -> Result<Self, SealError> {
        let rng = SystemRandom::new();
        let mut dek = Zeroizing::new([0u8; 32]);
        let mut wrap_nonce = [0u8; 12];
        let mut prefix = [0u8; 7];
        rng.fill(dek.as_mut()).map_err(|_| SealError::Random)?;
        rng.fill(&mut wrap_nonce).map_err(|_| SealError::Random)?;
        rng.fill(&mut prefix).map_err(|_| SealError::Random)?;

        let kek = ring.current();
        let mut wrapped = dek.to_vec();
        kek.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(wrap_nonce),
                Aad::from(wrap_aad(&kek.id, context)),
                &mut wrapped,
            )
            .map_err(|_| SealError::Random)?;

        let mut header = Vec::with_capacity(HEADER);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&kek.id.0);
        header.extend_from_slice(&wrap_nonce);
        header.extend_from_slice(&wrapped);
        header.extend_from_slice(&prefix);
        header.extend_from_slice(&(SEGMENT as u32).to_be_bytes());
        inner.write_all(&header)?;

        let key = UnboundKey::new(&AES_256_GCM, dek.as_ref()).map_err(|_| SealError::Random)?;
        let mut aad = header;
        aad.extend_from_slice(context);
        Ok(Sealer {
            inner,
            key: LessSafeKey::new(key),
            prefix,
            counter: 0,
            aad,
            buf: Zeroizing::new(Vec::with_capacity(room.min(SEGMENT) + TAG)),
            written: 0,
        })
    }

    fn emit(&mut self, last: bool) -> Result<(), SealError> {
        if self.counter >= MAX_SEGMENTS {
            return Err(SealError::TooLarge);
        }
        let nonce = segment_nonce(&self.prefix, self.counter as u32, last);
        self.key
            .seal_in_place_append_tag(nonce, Aad::from(&self.aad), &mut *self.buf)
            .map_err(|_| SealError::TooLarge)?;
        self.inner.write_all(&self.buf)?;
        self.buf.clear();
        self.counter += 1;
        Ok(())
    }

    /// Plaintext bytes taken so far.
    pub fn plaintext_len(&self) -> u64 {
        self.written
    }

    /// Seals the last segment and returns the inner writer (not flushed to disk: that is the
    /// caller's decision).
    pub fn finish(mut self) -> Result<W, SealError> {
        self.emit(true)?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

/// A writer that lends the space for a whole sealed segment, so that a [`Sealer`] can copy the
/// plaintext there and encrypt it in place ([`Sealer::write_in_place`]) instead of copying it
/// into its own buffer first and the ciphertext out again.
pub trait SegmentSpace: Write {
    /// Exactly `len` bytes of space after what was written so far, their content unspecified.
    fn segment_space(&mut self, len: usize) -> io::Result<&mut [u8]>;
    /// The first `len` bytes of the space last lent are written.
    fn segment_written(&mut self, len: usize) -> io::Result<()>;
}

impl<W: SegmentSpace> Sealer<W> {
    /// As `write_all`, producing the same bytes, but each whole segment that is known not to be
    /// the last one is sealed straight into the inner writer's space.
    pub fn write_in_place(&mut self, mut data: &[u8]) -> Result<(), SealError> {
        while !data.is_empty() {
            if self.buf.len() == SEGMENT {
                self.emit(false)?;
            }
            if self.buf.is_empty() && data.len() > SEGMENT {
                self.seal_in_place(&data[..SEGMENT])?;
                data = &data[SEGMENT..];
            } else {
                let n = (SEGMENT - self.buf.len()).min(data.len());
                self.write_all(&data[..n])?;
                data = &data[n..];
            }
        }
        Ok(())
    }

    /// Seals one whole segment that is not the last into the inner writer's space.
    fn seal_in_place(&mut self, plaintext: &[u8]) -> Result<(), SealError> {
        if self.counter >= MAX_SEGMENTS {
            return Err(SealError::TooLarge);
        }
        let nonce = segment_nonce(&self.prefix, self.counter as u32, false);
        let len = plaintext.len();
        let space = self.inner.segment_space(len + TAG)?;
        if space.len() != len + TAG {
            return Err(SealError::Io(io::Error::other(
                "the writer lent the wrong space",
            )));
        }
        let (text, tag_space) = space.split_at_mut(len);
        text.copy_from_slice(plaintext);
        match self
            .key
            .seal_in_place_separate_tag(nonce, Aad::from(&self.aad), text)
        {
            Ok(tag) => tag_space.copy_from_slice(tag.as_ref()),
            Err(_) => {
                // Leave no plaintext behind in the lent space.
                text.fill(0);
                return Err(SealError::TooLarge);
            }
        }
        self.inner.segment_written(len + TAG)?;
        self.counter += 1;
        self.written += len as u64;
        Ok(())
    }
}

impl<W: Write> Write for Sealer<W> {
    fn write(&mut self, mut data: &[u8]) -> io::Result<usize> {
        let taken = data.len();
        while !data.is_empty() {
            // A full buffer is only sealed once more data proves it is not the last segment.
            if self.buf.len() == SEGMENT {
                self.emit(false)?;
            }
            let room = SEGMENT - self.buf.len();
            let n = room.min(data.len());
            if self.buf.len() + n + TAG > self.buf.capacity() {
                // More than the buffer was sized for: move to a full segment's buffer, zeroing
                // the old one (a `Vec` that grows frees its old allocation as it is).
                let mut full = Zeroizing::new(Vec::with_capacity(SEGMENT + TAG));
                full.extend_from_slice(&self.buf);
                self.buf = full;
            }
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
        }
        self.written += taken as u64;
        Ok(taken)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Opens a sealed item as a stream of plaintext. A read fails (with `InvalidData`) at the first
/// segment that does not authenticate, including a missing last segment.
pub struct Opener<R: Read> {
    inner: R,
    key: LessSafeKey,
    prefix: [u8; 7],
    aad: Vec<u8>,
    /// Bytes read per segment: a whole sealed segment (its plaintext size from the header and
    /// the tag), or less for an in-memory item known to be smaller (see [`open`]).
    want: usize,
    counter: u64,
    /// Decrypted plaintext of the current segment, and how much of it was handed out.
    plain: Zeroizing<Vec<u8>>,
    pos: usize,
    /// A byte read ahead to learn whether a full segment is the last one.
    peeked: Option<u8>,
    done: bool,
}

fn read_full<R: Read>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}

impl<R: Read> Opener<R> {
    /// Reads the header and unwraps the data key.
    pub fn new(ring: &KeyRing, context: &[u8], mut inner: R) -> Result<Self, SealError> {
        let mut header = [0u8; HEADER];
        if read_full(&mut inner, &mut header)? != HEADER || &header[..4] != MAGIC {
            return Err(SealError::Format);
        }
        let mut id = [0u8; 8];
        id.copy_from_slice(&header[4..12]);
        let key_id = KeyId(id);
        let kek = ring.find(&key_id).ok_or(SealError::UnknownKey(key_id))?;
        let mut wrap_nonce = [0u8; 12];
        wrap_nonce.copy_from_slice(&header[12..24]);
        let mut wrapped = Zeroizing::new(header[24..72].to_vec());
        let dek = kek
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(wrap_nonce),
                Aad::from(wrap_aad(&key_id, context)),
                &mut wrapped,
            )
            .map_err(|_| SealError::Authentication)?;
        let key = UnboundKey::new(&AES_256_GCM, dek).map_err(|_| SealError::Format)?;
        let mut prefix = [0u8; 7];
        prefix.copy_from_slice(&header[72..79]);
        let mut seg = [0u8; 4];
        seg.copy_from_slice(&header[79..83]);
        let segment = u32::from_be_bytes(seg) as usize;
        if segment == 0 || segment > 16 * 1024 * 1024 {
            return Err(SealError::Format);
        }
        let mut aad = header.to_vec();
        aad.extend_from_slice(context);
        Ok(Opener {
            inner,
            key: LessSafeKey::new(key),
            prefix,
            aad,
            want: segment + TAG,
            counter: 0,
            // Allocated by the first read, at the size `want` has then: an in-memory item
            // known to be small (see [`open`]) never allocates, nor zeroes, a whole segment.
            plain: Zeroizing::new(Vec::new()),
            pos: 0,
            peeked: None,
            done: false,
        })
    }

    fn next_segment(&mut self) -> Result<(), SealError> {
        let want = self.want;
        self.plain.clear();
        self.plain.resize(want, 0);
        self.pos = 0;
        let mut got = 0;
        if let Some(b) = self.peeked.take() {
            self.plain[0] = b;
            got = 1;
        }
        got += read_full(&mut self.inner, &mut self.plain[got..])?;
        let last = if got < want {
            true
        } else {
            let mut one = [0u8; 1];
            if read_full(&mut self.inner, &mut one)? == 0 {
                true
            } else {
                self.peeked = Some(one[0]);
                false
            }
        };
        if got < TAG || self.counter >= MAX_SEGMENTS {
            return Err(SealError::Authentication);
        }
        self.plain.truncate(got);
        let nonce = segment_nonce(&self.prefix, self.counter as u32, last);
        let n = self
            .key
            .open_in_place(nonce, Aad::from(&self.aad), &mut self.plain)
            .map_err(|_| SealError::Authentication)?
            .len();
        self.plain.truncate(n);
        self.counter += 1;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.pos == self.plain.len() {
            if self.done {
                return Ok(0);
            }
            self.next_segment()?;
        }
        let n = out.len().min(self.plain.len() - self.pos);
        out[..n].copy_from_slice(&self.plain[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Seals a whole in-memory item.
pub fn seal(ring: &KeyRing, context: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, SealError> {
    let out = Vec::with_capacity(HEADER + plaintext.len() + TAG * (1 + plaintext.len() / SEGMENT));
    let mut sealer = Sealer::with_segment_buffer(ring, context, out, plaintext.len())?;
    sealer.write_all(plaintext)?;
    sealer.finish()
}

/// Opens a whole in-memory item. The plaintext is zeroed when dropped.
pub fn open(
    ring: &KeyRing,
    context: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealError> {
    let mut opener = Opener::new(ring, context, sealed)?;
    // What follows the header is all there is to read: a small item needs no whole segment's
    // buffer (allocated and zeroed per item otherwise). A read of exactly what is left still
    // finds the end, by the byte it then fails to read ahead.
    let segments = sealed.len().saturating_sub(HEADER);
    opener.want = opener.want.min(segments.max(TAG));
    let mut out = Zeroizing::new(Vec::with_capacity(sealed.len()));
    match opener.read_to_end(&mut out) {
        Ok(_) => Ok(out),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => Err(SealError::Authentication),
        Err(e) => Err(SealError::Io(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing::generate().unwrap()
    }

    #[test]
    fn the_key_id_of_a_sealed_item_is_read_without_the_key() {
        let ring = ring();
        let sealed = seal(&ring, b"ctx", b"secret").unwrap();
        assert_eq!(sealed_key_id(&sealed[..12]), Some(ring.current_id()));
        assert_eq!(sealed_key_id(&sealed[..11]), None, "too short");
        assert_eq!(sealed_key_id(b"not sealed at all"), None);
    }

    #[test]
    fn round_trips_at_segment_boundaries() {
        let ring = ring();
        for len in [
            0,
            1,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            3 * SEGMENT + 7,
        ] {
            let data: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&ring, b"ctx", &data).unwrap();
            assert_eq!(*open(&ring, b"ctx", &sealed).unwrap(), data, "len {len}");
            if len > 16 {
                assert!(!sealed.windows(16).any(|w| w == &data[..16]));
            }
        }
    }

    #[test]
    fn truncation_reordering_and_tampering_fail() {
        let ring = ring();
        let data = vec![7u8; 3 * SEGMENT + 5];
        let sealed = seal(&ring, b"ctx", &data).unwrap();
        // Dropping the last segment leaves a valid-looking prefix that must not open.
        let cut = HEADER + 3 * (SEGMENT + TAG);
        assert!(open(&ring, b"ctx", &sealed[..cut]).is_err());
        // Dropping one byte.
        assert!(open(&ring, b"ctx", &sealed[..sealed.len() - 1]).is_err());
        // Swapping two segments.
        let mut swapped = sealed.clone();
        let a = HEADER..HEADER + SEGMENT + TAG;
        let b = HEADER + SEGMENT + TAG..HEADER + 2 * (SEGMENT + TAG);
        let seg_a = sealed[a.clone()].to_vec();
        swapped[a].copy_from_slice(&sealed[b.clone()]);
        swapped[b].copy_from_slice(&seg_a);
        assert!(open(&ring, b"ctx", &swapped).is_err());
        // Flipping a bit.
        let mut flipped = sealed.clone();
        flipped[HEADER + 10] ^= 1;
        assert!(open(&ring, b"ctx", &flipped).is_err());
        // Trailing garbage.
        let mut longer = sealed.clone();
        longer.push(0);
        assert!(open(&ring, b"ctx", &longer).is_err());
    }

    /// Small items are sealed and opened with buffers sized to them: the bytes are the same
    /// format the streaming sealer and opener use, and a cut or lengthened item still fails.
    #[test]
    fn small_items_keep_the_format_and_stay_strict() {
        let ring = ring();
        for len in [0, 1, 15, 16, 17, 1000] {
            let data: Vec<u8> = (0..len).map(|i| (i % 13) as u8).collect();
            let sealed = seal(&ring, b"ctx", &data).unwrap();
            let mut streamed = Vec::new();
            Opener::new(&ring, b"ctx", &sealed[..])
                .unwrap()
                .read_to_end(&mut streamed)
                .unwrap();
            assert_eq!(streamed, data, "len {len}");
            let mut sealer = Sealer::new(&ring, b"ctx", Vec::new()).unwrap();
            sealer.write_all(&data).unwrap();
            let by_stream = sealer.finish().unwrap();
            assert_eq!(*open(&ring, b"ctx", &by_stream).unwrap(), data, "len {len}");
            assert!(open(&ring, b"ctx", &sealed[..sealed.len() - 1]).is_err());
            let mut longer = sealed.clone();
            longer.push(0);
            assert!(open(&ring, b"ctx", &longer).is_err(), "len {len}");
        }
    }

    /// A sealer whose buffer was sized for a small item and is then given more moves to a
    /// whole segment's buffer and seals it all.
    /// A `Vec` that lends space, counting the segments sealed into it.
    struct Lending {
        bytes: Vec<u8>,
        lent: usize,
    }

    impl Write for Lending {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.bytes.write(data)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl SegmentSpace for Lending {
        fn segment_space(&mut self, len: usize) -> io::Result<&mut [u8]> {
            let at = self.bytes.len();
            // Stale bytes, as a reused buffer would hold.
            self.bytes.resize(at + len, 0xAA);
            Ok(&mut self.bytes[at..])
        }
        fn segment_written(&mut self, _len: usize) -> io::Result<()> {
            self.lent += 1;
            Ok(())
        }
    }

    #[test]
    fn sealing_in_place_writes_what_write_all_writes() {
        let ring = ring();
        let data: Vec<u8> = (0..5 * SEGMENT + 3).map(|i| (i % 239) as u8).collect();
        for chunk_size in [
            1000,
            SEGMENT - 1,
            SEGMENT,
            SEGMENT + 1,
            3 * SEGMENT,
            data.len(),
        ] {
            let lending = Lending {
                bytes: Vec::new(),
                lent: 0,
            };
            let mut sealer = Sealer::new(&ring, b"ctx", lending).unwrap();
            for chunk in data.chunks(chunk_size) {
                sealer.write_in_place(chunk).unwrap();
            }
            let lending = sealer.finish().unwrap();
            let mut plain = Sealer::new(&ring, b"ctx", Vec::new()).unwrap();
            plain.write_all(&data).unwrap();
            let plain = plain.finish().unwrap();
            assert_eq!(lending.bytes.len(), plain.len(), "chunks of {chunk_size}");
            assert!(
                *open(&ring, b"ctx", &lending.bytes).unwrap() == data,
                "chunks of {chunk_size}"
            );
            assert!(!lending.bytes.windows(16).any(|w| w == &data[..16]));
            if chunk_size > SEGMENT {
                assert!(
                    lending.lent > 0,
                    "chunks of {chunk_size}: nothing sealed in place"
                );
            }
        }
    }

    #[test]
    fn a_sealer_sized_small_takes_more() {
        let ring = ring();
        let data: Vec<u8> = (0..3 * SEGMENT + 5).map(|i| (i % 241) as u8).collect();
        let mut sealer = Sealer::with_segment_buffer(&ring, b"ctx", Vec::new(), 10).unwrap();
        for chunk in data.chunks(7) {
            sealer.write_all(chunk).unwrap();
        }
        let sealed = sealer.finish().unwrap();
        assert!(*open(&ring, b"ctx", &sealed).unwrap() == data);
    }

    #[test]
    fn context_binds_the_item_to_its_place() {
        let ring = ring();
        let sealed = seal(&ring, b"documents/a", b"hello").unwrap();
        assert!(matches!(
            open(&ring, b"documents/b", &sealed),
            Err(SealError::Authentication)
        ));
    }

    #[test]
    fn items_sealed_under_an_old_key_open_after_rotation() {
        let mut ring = KeyRing::generate().unwrap();
        let old = seal(&ring, b"c", b"before rotation").unwrap();
        let line = crate::keys::new_key_line().unwrap();
        ring.push_text(&line, "test").unwrap();
        let new = seal(&ring, b"c", b"after rotation").unwrap();
        assert_ne!(old[4..12], new[4..12], "new items use the new key id");
        assert_eq!(*open(&ring, b"c", &old).unwrap(), b"before rotation");
        assert_eq!(*open(&ring, b"c", &new).unwrap(), b"after rotation");
        // A ring without the old key names the missing key.
        let only_new = KeyRing::parse(&line, "test").unwrap();
        assert!(matches!(
            open(&only_new, b"c", &old),
            Err(SealError::UnknownKey(_))
        ));
    }
}
