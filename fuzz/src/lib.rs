//! Shared pieces of the fuzz targets: [`adapt`] calls the parsers (the one place to change when
//! their signatures or limits change), [`check`] holds the properties every target asserts, and
//! [`Input`] carves a fuzzer's bytes into the choices a target needs.

pub mod adapt;
pub mod check;

/// Reads choices off the front of the fuzzer's bytes; what is left is the body.
pub struct Input<'a> {
    data: &'a [u8],
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Input { data }
    }

    /// One byte (0 once the input is used up).
    pub fn byte(&mut self) -> u8 {
        match self.data.split_first() {
            Some((b, rest)) => {
                self.data = rest;
                *b
            }
            None => 0,
        }
    }

    /// A number in `1..=max`, from two bytes.
    pub fn in_range(&mut self, max: usize) -> usize {
        let n = usize::from(self.byte()) << 8 | usize::from(self.byte());
        n % max.max(1) + 1
    }

    /// Up to `max` bytes, the count taken from one byte.
    pub fn bytes(&mut self, max: usize) -> &'a [u8] {
        let n = usize::from(self.byte()).min(max).min(self.data.len());
        let (taken, rest) = self.data.split_at(n);
        self.data = rest;
        taken
    }

    /// Everything that is left.
    pub fn rest(self) -> &'a [u8] {
        self.data
    }
}
