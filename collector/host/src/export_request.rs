//! The export request, encoded from the caller's batch as it is.
//!
//! [`ExportRequest`] owns its batch, so building one from a borrowed [`ExportBatch`] clones it:
//! every label header (48 bytes a label, about 0.5 MiB for a batch of 2000 node_exporter-like
//! series), only to be encoded and dropped. [`ExportRequestRef`] mirrors it variant for
//! variant and field for field with references, and postcard writes the same bytes for both
//! (the variant's index, then its fields in order; a slice as a sequence like a `Vec`).

use magpie_sdk::abi::{self, ExportBatch, ExportBatchEncoder, ExportExemplar};
use serde::Serialize;

#[cfg(doc)]
use magpie_sdk::abi::ExportRequest;

/// [`ExportRequest`] by reference.
#[derive(Serialize)]
enum ExportRequestRef<'r, 'a> {
    V1 {
        batch: &'r ExportBatch<'a>,
    },
    V2 {
        batch: &'r ExportBatch<'a>,
        fallback: bool,
    },
    V3 {
        batch: &'r ExportBatch<'a>,
        fallback: bool,
        exemplars: &'r [ExportExemplar<'a>],
    },
}

/// The bytes of the [`ExportRequest`] for `batch`: the first version for plugins that never
/// answer `Unsupported`, the third only when there are exemplars (plugins of exporters that
/// send none never see it).
pub(crate) fn encode(
    batch: &ExportBatch<'_>,
    exemplars: &[ExportExemplar<'_>],
    fallback: bool,
) -> Vec<u8> {
    let req = if !exemplars.is_empty() {
        ExportRequestRef::V3 {
            batch,
            fallback,
            exemplars,
        }
    } else if fallback {
        ExportRequestRef::V2 { batch, fallback }
    } else {
        ExportRequestRef::V1 { batch }
    };
    abi::encode(&req).unwrap_or_default()
}

/// The bytes of the same [`ExportRequest`] for a batch held encoded: the batch's bytes are
/// copied in one piece between the variant's index and the fields after it.
pub(crate) fn encode_from(
    batch: &ExportBatchEncoder,
    exemplars: &[ExportExemplar<'_>],
    fallback: bool,
) -> Vec<u8> {
    // Postcard writes a variant's index as a varint: V1 0, V2 1, V3 2, one byte each.
    let variant: u8 = if !exemplars.is_empty() {
        2
    } else {
        u8::from(fallback)
    };
    let mut out = vec![variant];
    batch.write_to(&mut out);
    if variant > 0 {
        out.push(u8::from(fallback));
    }
    if variant == 2 && abi::encode_into(&exemplars, &mut out).is_err() {
        out.clear();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_sdk::abi::{ExportBatchBuilder, ExportRequest, Label};

    /// The encoder's form of [`batch`].
    fn encoded() -> ExportBatchEncoder {
        let mut e = ExportBatchEncoder::default();
        let b = batch();
        for s in b.series() {
            e.series(s.labels.iter().map(|l| (&*l.name, &*l.value)));
            for p in s.points {
                e.point(p.t, p.v);
            }
        }
        e
    }

    fn batch() -> ExportBatch<'static> {
        let mut b = ExportBatchBuilder::default();
        b.series([
            Label::new("__name__", "node_load1"),
            Label::new("instance", "pi:9100"),
        ]);
        b.point(1_700_000_000_000, 0.42);
        b.point(1_700_000_015_000, -0.0);
        b.series([Label::new("__name__", "up")]);
        b.point(1_700_000_000_000, 1.0);
        b.finish()
    }

    fn exemplar() -> ExportExemplar<'static> {
        ExportExemplar {
            series: 1,
            labels: vec![Label::new("trace_id", "4bf92f3577b34da6")],
            value: 1.5,
            timestamp_ms: 1_700_000_000_123,
        }
    }

    #[test]
    fn the_same_bytes_as_the_owned_request_in_every_version() {
        let b = batch();
        let ex = vec![exemplar()];
        let owned = [
            (ExportRequest::V1 { batch: b.clone() }, &[][..], false),
            (
                ExportRequest::V2 {
                    batch: b.clone(),
                    fallback: true,
                },
                &[][..],
                true,
            ),
            (
                ExportRequest::V3 {
                    batch: b.clone(),
                    fallback: false,
                    exemplars: ex.clone(),
                },
                &ex[..],
                false,
            ),
            (
                ExportRequest::V3 {
                    batch: b.clone(),
                    fallback: true,
                    exemplars: ex.clone(),
                },
                &ex[..],
                true,
            ),
        ];
        for (req, exemplars, fallback) in owned {
            assert_eq!(
                encode(&b, exemplars, fallback),
                abi::encode(&req).unwrap(),
                "{req:?}"
            );
            assert_eq!(
                encode_from(&encoded(), exemplars, fallback),
                abi::encode(&req).unwrap(),
                "{req:?}, from the encoder"
            );
            // And the guest reads it back as that request.
            let bytes = encode(&b, exemplars, fallback);
            assert_eq!(abi::decode::<ExportRequest<'_>>(&bytes).unwrap(), req);
        }
    }
}
