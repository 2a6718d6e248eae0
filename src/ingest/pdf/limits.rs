//! The budget of one parse: time, decompressed bytes and fields spent so far.

use std::collections::HashSet;
use std::time::Instant;

use lopdf::{Object, ObjectId};

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

/// Guards a walk of a field tree: depth, time, reference loops, and nodes shared by two parents
/// (read once). One guard for the FDF and the AcroForm walks, so both refuse the same trees.
#[derive(Default)]
pub(crate) struct TreeGuard {
    /// The indirect objects on the way from the root to the current node.
    path: Vec<ObjectId>,
    /// Every indirect node visited.
    seen: HashSet<ObjectId>,
}

/// What [`TreeGuard::enter`] decided for a node.
pub(crate) enum Step {
    /// Read it; pass the id back to [`TreeGuard::leave`] afterwards.
    Visit(Option<ObjectId>),
    /// Already read through another parent.
    Skip,
}

impl TreeGuard {
    /// Checks a node at `depth` before it is read.
    pub(crate) fn enter(
        &mut self,
        obj: &Object,
        depth: usize,
        budget: &mut Budget<'_>,
    ) -> Result<Step, PdfFormError> {
        if depth > budget.limits.max_depth {
            return Err(PdfFormError::TooDeep);
        }
        budget.tick()?;
        let Object::Reference(id) = obj else {
            return Ok(Step::Visit(None));
        };
        if self.path.contains(id) {
            return Err(PdfFormError::ReferenceLoop);
        }
        if !self.seen.insert(*id) {
            return Ok(Step::Skip);
        }
        self.path.push(*id);
        Ok(Step::Visit(Some(*id)))
    }

    /// Leaves the node `enter` let in.
    pub(crate) fn leave(&mut self, id: Option<ObjectId>) {
        if id.is_some() {
            self.path.pop();
        }
    }
}
