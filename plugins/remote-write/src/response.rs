//! How the exporter judges a receiver's answer to one payload.
//!
//! The status decides, as both specs say: 2xx accepted, 429 and 5xx retried, other codes
//! refused (a 4xx means the request can never succeed).
//!
//! One answer is not a refusal of the samples but of the encoding: 415 Unsupported Media Type
//! to a 2.0 request, which the 2.0 spec has a receiver answer for a message it does not take
//! and a sender meet by sending 1.0. It reads [`ExportOutcome::Unsupported`]; the host then
//! asks for the same batch in 1.0 and sends 1.0 to that receiver from then on. Remote write
//! 2.0 also adds the `X-Prometheus-Remote-Write-{Samples,Histograms,Exemplars}-Written`
//! response headers, with one rule on them that this exporter follows: a 2xx answer to a 2.0
//! request carrying none of them is treated as a 415, because it is what a 1.0 receiver that
//! ignores the `Content-Type` answers after decoding the 2.0 body as an empty
//! `prometheus.WriteRequest` (the spec's "Required Written Response Headers"). The samples
//! were not stored, so sending them again in 1.0 stores them once.
//!
//! A 415 to a 1.0 request stays [`ExportOutcome::Rejected`]: there is nothing older to fall
//! back to.
//!
//! A 2xx whose `Samples-Written` count is lower than the payload's samples is still
//! [`ExportOutcome::Success`]. The spec forbids a 2xx when any sample was not written, so the
//! status is the receiver's answer and the count its bookkeeping (receivers that count
//! differently exist); the count does not say *which* samples were written, which
//! [`ExportOutcome::Partial`] would need; and the outcome call is not told which payload it
//! judges, so there is no sample count to compare with. Retrying would duplicate samples the
//! receiver confirmed.

use magpie_sdk::abi::{ExportOutcome, ResponseHead};

use crate::Protocol;

/// Prefix shared by the 2.0 `...-Written` headers (compared without case, as HTTP does).
const WRITTEN_PREFIX: &str = "x-prometheus-remote-write-";
/// Suffix shared by the 2.0 `...-Written` headers.
const WRITTEN_SUFFIX: &str = "-written";

/// The outcome of one payload sent with `protocol`.
#[must_use]
pub fn outcome(protocol: Protocol, head: &ResponseHead<'_>) -> ExportOutcome {
    let ResponseHead::V1 { status, .. } = head;
    if protocol != Protocol::V2 {
        return ExportOutcome::from_status(*status);
    }
    match ExportOutcome::from_status(*status) {
        ExportOutcome::Success if !confirms_written(head) => ExportOutcome::Unsupported,
        _ if *status == 415 => ExportOutcome::Unsupported,
        other => other,
    }
}

/// Whether the answer carries at least one `X-Prometheus-Remote-Write-*-Written` header,
/// the mark of a 2.0 receiver.
#[must_use]
pub fn confirms_written(head: &ResponseHead<'_>) -> bool {
    let ResponseHead::V1 { headers, .. } = head;
    headers.iter().any(|(name, _)| {
        let n = name.as_bytes();
        n.len() > WRITTEN_PREFIX.len() + WRITTEN_SUFFIX.len()
            && n[..WRITTEN_PREFIX.len()].eq_ignore_ascii_case(WRITTEN_PREFIX.as_bytes())
            && n[n.len() - WRITTEN_SUFFIX.len()..].eq_ignore_ascii_case(WRITTEN_SUFFIX.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn head(status: u16, headers: &[(&'static str, &'static str)]) -> ResponseHead<'static> {
        ResponseHead::V1 {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(*v)))
                .collect(),
            body: Cow::Borrowed(b""),
        }
    }

    #[test]
    fn status_classes_follow_prometheus() {
        for protocol in [Protocol::V1, Protocol::V2] {
            let unsupported = if protocol == Protocol::V2 {
                ExportOutcome::Unsupported
            } else {
                ExportOutcome::Rejected
            };
            let written = [("X-Prometheus-Remote-Write-Samples-Written", "3")];
            for (status, expected) in [
                (200, ExportOutcome::Success),
                (204, ExportOutcome::Success),
                (429, ExportOutcome::Retryable),
                (500, ExportOutcome::Retryable),
                (503, ExportOutcome::Retryable),
                (400, ExportOutcome::Rejected),
                (404, ExportOutcome::Rejected),
                (413, ExportOutcome::Rejected),
                (415, unsupported),
            ] {
                assert_eq!(
                    outcome(protocol, &head(status, &written)),
                    expected,
                    "{protocol:?} {status}"
                );
            }
        }
    }

    #[test]
    fn v1_needs_no_written_headers() {
        assert_eq!(
            outcome(Protocol::V1, &head(200, &[])),
            ExportOutcome::Success
        );
    }

    #[test]
    fn v2_success_without_written_headers_reads_as_unsupported() {
        assert_eq!(
            outcome(Protocol::V2, &head(204, &[("content-type", "text/plain")])),
            ExportOutcome::Unsupported
        );
        // The same answer to 1.0 is a success.
        assert_eq!(
            outcome(Protocol::V1, &head(204, &[("content-type", "text/plain")])),
            ExportOutcome::Success
        );
        // Failures keep their status meaning.
        assert_eq!(
            outcome(Protocol::V2, &head(503, &[])),
            ExportOutcome::Retryable
        );
    }

    #[test]
    fn any_written_header_in_any_case_confirms() {
        for name in [
            "x-prometheus-remote-write-samples-written",
            "X-Prometheus-Remote-Write-Histograms-Written",
            "X-PROMETHEUS-REMOTE-WRITE-EXEMPLARS-WRITTEN",
        ] {
            assert_eq!(
                outcome(Protocol::V2, &head(200, &[(name, "0")])),
                ExportOutcome::Success,
                "{name}"
            );
        }
        assert!(!confirms_written(&head(
            200,
            &[("x-prometheus-remote-write-version", "2.0.0")]
        )));
    }

    #[test]
    fn fewer_samples_written_than_sent_is_still_success() {
        assert_eq!(
            outcome(
                Protocol::V2,
                &head(200, &[("X-Prometheus-Remote-Write-Samples-Written", "1")])
            ),
            ExportOutcome::Success
        );
    }
}
