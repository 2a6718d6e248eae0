//! Prometheus metrics, in the text exposition format. Labels are form names, source formats,
//! error codes, sink names and outcomes: configuration and fixed vocabularies, never a value
//! that came from a client.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// Upper bounds (seconds) of the delivery latency histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

#[derive(Default)]
struct Inner {
    accepted: BTreeMap<(String, String), u64>,
    rejected: BTreeMap<(String, String), u64>,
    deliveries: BTreeMap<(String, String), u64>,
    latency: BTreeMap<String, Histogram>,
}

/// The service's counters.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    pub fn accepted(&self, form: &str, source: &str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.accepted
                .entry((form.to_owned(), source.to_owned()))
                .or_default() += 1;
        }
    }

    /// `form` must be a configured form name (or "unknown"), `code` an error code.
    pub fn rejected(&self, form: &str, code: &str) {
        if let Ok(mut m) = self.inner.lock() {
            *m.rejected
                .entry((form.to_owned(), code.to_owned()))
                .or_default() += 1;
        }
    }

    pub fn delivery(&self, sink: &str, outcome: &str, seconds: f64) {
        if let Ok(mut m) = self.inner.lock() {
            *m.deliveries
                .entry((sink.to_owned(), outcome.to_owned()))
                .or_default() += 1;
            let h = m.latency.entry(sink.to_owned()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.sum += seconds;
            h.count += 1;
        }
    }

    /// Renders every metric; `spool_depth` is read by the caller at scrape time.
    pub fn render(&self, spool_depth: i64) -> String {
        let mut out = String::new();
        let Ok(m) = self.inner.lock() else {
            return out;
        };
        let _ = writeln!(
            out,
            "# HELP secureform_submissions_accepted_total Submissions accepted (durably spooled)."
        );
        let _ = writeln!(out, "# TYPE secureform_submissions_accepted_total counter");
        for ((form, source), n) in &m.accepted {
            let _ = writeln!(
                out,
                "secureform_submissions_accepted_total{{form=\"{form}\",source=\"{source}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP secureform_submissions_rejected_total Submissions refused, by error code."
        );
        let _ = writeln!(out, "# TYPE secureform_submissions_rejected_total counter");
        for ((form, code), n) in &m.rejected {
            let _ = writeln!(
                out,
                "secureform_submissions_rejected_total{{form=\"{form}\",code=\"{code}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP secureform_spool_depth Deliveries waiting (pending or retrying)."
        );
        let _ = writeln!(out, "# TYPE secureform_spool_depth gauge");
        let _ = writeln!(out, "secureform_spool_depth {spool_depth}");
        let _ = writeln!(
            out,
            "# HELP secureform_deliveries_total Delivery attempts, by sink and outcome."
        );
        let _ = writeln!(out, "# TYPE secureform_deliveries_total counter");
        for ((sink, outcome), n) in &m.deliveries {
            let _ = writeln!(
                out,
                "secureform_deliveries_total{{sink=\"{sink}\",outcome=\"{outcome}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP secureform_delivery_seconds Time of one delivery attempt."
        );
        let _ = writeln!(out, "# TYPE secureform_delivery_seconds histogram");
        for (sink, h) in &m.latency {
            for (i, bound) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "secureform_delivery_seconds_bucket{{sink=\"{sink}\",le=\"{bound}\"}} {}",
                    h.counts[i]
                );
            }
            let _ = writeln!(
                out,
                "secureform_delivery_seconds_bucket{{sink=\"{sink}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "secureform_delivery_seconds_sum{{sink=\"{sink}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "secureform_delivery_seconds_count{{sink=\"{sink}\"}} {}",
                h.count
            );
        }
        out
    }
}
