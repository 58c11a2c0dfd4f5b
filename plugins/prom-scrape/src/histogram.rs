//! The OpenMetrics rules for one histogram or gauge histogram group (one label set without `le`,
//! at one timestamp): buckets in increasing order with non-decreasing values, a final `+Inf`
//! bucket, a count equal to it, sum and count together, and the sign rules for sums.
//!
//! Samples arrive one at a time; the group is checked when the next group starts or the family
//! ends, so only the running state below is kept.

use crate::Reason;

/// The running state of one histogram group (one label set and timestamp).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HistogramGroup {
    active: bool,
    group: u64,
    timestamp: Option<f64>,
    count: Option<f64>,
    last_bound: Option<f64>,
    last_value: f64,
    negative_buckets: bool,
    has_sum: bool,
    has_gsum: bool,
    negative_gsum: bool,
}

impl HistogramGroup {
    pub(crate) fn observe(
        &mut self,
        group: u64,
        timestamp: Option<f64>,
        suffix: &str,
        value: f64,
        le: Option<f64>,
    ) -> Result<(), Reason> {
        if !self.active || group != self.group || timestamp != self.timestamp {
            self.close()?;
            *self = HistogramGroup {
                active: true,
                group,
                timestamp,
                ..HistogramGroup::default()
            };
        }
        match suffix {
            "_bucket" => {
                let bound = le.unwrap_or(f64::NAN);
                self.negative_buckets |= bound < 0.0;
                if self.last_bound.is_some_and(|prev| bound <= prev) {
                    return Err(Reason::BucketsOutOfOrder);
                }
                if value < self.last_value {
                    return Err(Reason::BucketValuesDecrease);
                }
                self.last_bound = Some(bound);
                self.last_value = value;
            }
            "_count" | "_gcount" => self.count = Some(value),
            "_sum" => self.has_sum = true,
            "_gsum" => {
                self.has_gsum = true;
                self.negative_gsum |= value < 0.0;
            }
            _ => {}
        }
        Ok(())
    }

    /// Checks a finished group; a no-op if none is open.
    pub(crate) fn close(&mut self) -> Result<(), Reason> {
        if !core::mem::take(&mut self.active) {
            return Ok(());
        }
        if self.last_bound != Some(f64::INFINITY) {
            return Err(Reason::MissingInfBucket);
        }
        if self.count.is_some_and(|c| c != self.last_value) {
            return Err(Reason::CountMismatch);
        }
        if (self.has_sum || self.has_gsum) && self.count.is_none() {
            return Err(Reason::SumWithoutCount);
        }
        if !(self.has_sum || self.has_gsum) && self.count.is_some() {
            return Err(Reason::CountWithoutSum);
        }
        if self.negative_buckets && self.has_sum {
            return Err(Reason::SumWithNegativeBuckets);
        }
        if !self.negative_buckets && self.negative_gsum {
            return Err(Reason::NegativeGsum);
        }
        Ok(())
    }
}
