//! The budget of one parse: time, decompressed bytes and fields spent so far.

use std::time::Instant;

use super::{PdfFormError, PdfLimits};

/// What one parse may still spend.
pub(crate) struct Budget<'a> {
    pub(crate) limits: &'a PdfLimits,
    start: Instant,
    decompressed: u64,
    fields: usize,
    ticks: u32,
}

impl<'a> Budget<'a> {
    pub(crate) fn new(limits: &'a PdfLimits) -> Self {
        Budget {
            limits,
            start: Instant::now(),
            decompressed: 0,
            fields: 0,
            ticks: 0,
        }
    }

    /// Fails once the parse has run longer than allowed.
    pub(crate) fn check_time(&self) -> Result<(), PdfFormError> {
        if self.start.elapsed() > self.limits.max_parse_time {
            return Err(PdfFormError::Timeout);
        }
        Ok(())
    }

    /// A cheap [`Budget::check_time`] for tight loops: looks at the clock every 4096 calls.
    pub(crate) fn tick(&mut self) -> Result<(), PdfFormError> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks & 0xFFF == 0 {
            self.check_time()?;
        }
        Ok(())
    }

    /// Accounts for `n` more decompressed bytes.
    pub(crate) fn take_decompressed(&mut self, n: u64) -> Result<(), PdfFormError> {
        self.decompressed = self.decompressed.saturating_add(n);
        if self.decompressed > self.limits.max_decompressed {
            return Err(PdfFormError::DecompressionLimit);
        }
        Ok(())
    }

    /// The decompressed bytes still allowed.
    pub(crate) fn remaining_decompressed(&self) -> u64 {
        self.limits
            .max_decompressed
            .saturating_sub(self.decompressed)
    }

    /// Accounts for one more field in the result.
    pub(crate) fn add_field(&mut self) -> Result<(), PdfFormError> {
        self.fields += 1;
        if self.fields > self.limits.max_fields {
            return Err(PdfFormError::TooManyFields);
        }
        Ok(())
    }
}
