//! The `remote-write-in` decoder: Prometheus remote write requests that another agent (a
//! Prometheus in agent mode, vmagent, Grafana Alloy) pushes to the collector's
//! `POST /api/v1/write`.
//!
//! The body is snappy block-compressed protobuf. `Content-Type` picks the message:
//! `application/x-protobuf;proto=io.prometheus.write.v2.Request` is remote write 2.0 (labels
//! as references into the request's symbol table), anything else 1.0
//! (`prometheus.WriteRequest`). Fields the collector cannot store (metadata, exemplars,
//! histograms) are skipped, as protobuf readers do; float samples keep their values bit for
//! bit and their timestamps.
//!
//! [`decode`] is the whole logic and compiles natively for tests; on wasm32 the crate is the
//! plugin.
//!
//! # Example
//!
//! The default decoder of `POST /api/v1/write` on an HTTP source, so a Prometheus agent or
//! vmagent can remote-write into magpie (1.0 or 2.0, by Content-Type):
//!
//! ```toml
//! [[ingest]]
//! name = "agents"
//! source = "http"
//! listen = "127.0.0.1:9201"
//! ```

use prost::Message as _;
use remote_write::proto::{v1, v2};

/// The media-type parameter that marks a remote write 2.0 request.
pub const V2_PROTO: &str = "io.prometheus.write.v2.Request";

/// Whether `content_type` names a remote write 2.0 request.
#[must_use]
pub fn is_v2(content_type: &str) -> bool {
    content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .any(|(k, v)| {
            k.trim().eq_ignore_ascii_case("proto") && v.trim().trim_matches('"') == V2_PROTO
        })
}

/// Where decoded samples go: (metric name, other labels, value, timestamp ms).
pub type Out<'o> = dyn FnMut(&str, &[(&str, &str)], f64, i64) -> Result<(), String> + 'o;

/// Decodes one request: `out` gets (metric name, other labels, value, timestamp ms) per sample.
///
/// # Errors
/// A message naming what is wrong: not snappy, not the protobuf message, a series without
/// `__name__` or with a symbol reference outside the table, more samples than `sample_limit`
/// (0 = none), or `out`'s own refusal.
pub fn decode(
    content_type: &str,
    body: &[u8],
    sample_limit: u32,
    out: &mut Out<'_>,
) -> Result<usize, String> {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| format!("body is not snappy block-compressed: {e}"))?;
    let limit = if sample_limit == 0 {
        usize::MAX
    } else {
        sample_limit as usize
    };
    let mut labels: Vec<(&str, &str)> = Vec::new();
    let mut count = 0usize;
    let mut emit_series = |labels: &mut Vec<(&str, &str)>,
                           samples: &mut dyn Iterator<Item = (f64, i64)>|
     -> Result<(), String> {
        let i = labels
            .iter()
            .position(|(n, _)| *n == "__name__")
            .ok_or_else(|| format!("a series without __name__: {labels:?}"))?;
        let (_, name) = labels.remove(i);
        for (v, t) in samples {
            count += 1;
            if count > limit {
                return Err(format!("more than sample_limit {sample_limit} samples"));
            }
            out(name, labels, v, t)?;
        }
        Ok(())
    };
    if is_v2(content_type) {
        let req = v2::Request::decode(raw.as_slice())
            .map_err(|e| format!("not a remote write 2.0 request: {e}"))?;
        let sym = |i: u32| {
            req.symbols
                .get(i as usize)
                .map(String::as_str)
                .ok_or_else(|| {
                    format!(
                        "symbol reference {i} outside the table of {}",
                        req.symbols.len()
                    )
                })
        };
        for ts in &req.timeseries {
            if ts.labels_refs.len() % 2 != 0 {
                return Err("a series with an odd number of label references".into());
            }
            labels.clear();
            for pair in ts.labels_refs.chunks(2) {
                labels.push((sym(pair[0])?, sym(pair[1])?));
            }
            emit_series(
                &mut labels,
                &mut ts.samples.iter().map(|s| (s.value, s.timestamp)),
            )?;
        }
    } else {
        let req = v1::WriteRequest::decode(raw.as_slice())
            .map_err(|e| format!("not a remote write 1.0 request: {e}"))?;
        for ts in &req.timeseries {
            labels.clear();
            labels.extend(
                ts.labels
                    .iter()
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            emit_series(
                &mut labels,
                &mut ts.samples.iter().map(|s| (s.value, s.timestamp)),
            )?;
        }
    }
    Ok(count)
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{DecodeRequest, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error};

    struct RemoteWriteIn;

    impl Decoder for RemoteWriteIn {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            config.expect_table(&[]).map_err(Error::new)?;
            Ok(Self)
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            super::decode(
                req.content_type(),
                req.body(),
                req.sample_limit(),
                &mut |name, labels, value, ts| {
                    out.sample(name, labels.iter().copied(), value, Some(ts))
                        .map_err(|_| "the host took no more samples".into())
                },
            )
            .map(drop)
            .map_err(Error::new)
        }
    }

    magpie_sdk::export_decoder!(RemoteWriteIn);
}

#[cfg(test)]
mod tests {
    use super::*;

    type Got = Vec<(String, Vec<(String, String)>, u64, i64)>;

    fn run(ct: &str, body: &[u8]) -> Result<Got, String> {
        let mut got = Got::new();
        decode(ct, body, 0, &mut |n, l, v, t| {
            got.push((
                n.into(),
                l.iter().map(|(a, b)| ((*a).into(), (*b).into())).collect(),
                v.to_bits(),
                t,
            ));
            Ok(())
        })?;
        Ok(got)
    }

    fn snappy(b: &[u8]) -> Vec<u8> {
        snap::raw::Encoder::new().compress_vec(b).unwrap()
    }

    #[test]
    fn v1_and_v2_decode_to_the_same_samples() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let v1 = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![
                    v1::Label {
                        name: "__name__".into(),
                        value: "up".into(),
                    },
                    v1::Label {
                        name: "job".into(),
                        value: "a".into(),
                    },
                ],
                samples: vec![
                    v1::Sample {
                        value: 1.0,
                        timestamp: 10,
                    },
                    v1::Sample {
                        value: stale,
                        timestamp: 20,
                    },
                ],
            }],
        };
        let v2 = v2::Request {
            symbols: vec![
                "".into(),
                "__name__".into(),
                "up".into(),
                "job".into(),
                "a".into(),
            ],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 2, 3, 4],
                samples: vec![
                    v2::Sample {
                        value: 1.0,
                        timestamp: 10,
                    },
                    v2::Sample {
                        value: stale,
                        timestamp: 20,
                    },
                ],
            }],
        };
        let want: Got = vec![
            (
                "up".into(),
                vec![("job".into(), "a".into())],
                1f64.to_bits(),
                10,
            ),
            (
                "up".into(),
                vec![("job".into(), "a".into())],
                stale.to_bits(),
                20,
            ),
        ];
        assert_eq!(
            run("application/x-protobuf", &snappy(&v1.encode_to_vec())).unwrap(),
            want
        );
        let ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
        assert_eq!(run(ct, &snappy(&v2.encode_to_vec())).unwrap(), want);
    }

    #[test]
    fn garbage_and_truncated_bodies_are_refused() {
        assert!(
            run("", b"not snappy at all")
                .unwrap_err()
                .contains("snappy")
        );
        let req = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![v1::Label {
                    name: "__name__".into(),
                    value: "x".into(),
                }],
                samples: vec![v1::Sample {
                    value: 1.0,
                    timestamp: 1,
                }],
            }],
        };
        let bytes = req.encode_to_vec();
        let e = run("", &snappy(&bytes[..bytes.len() - 3])).unwrap_err();
        assert!(e.contains("not a remote write 1.0 request"), "{e}");
        let nameless = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![v1::Label {
                    name: "a".into(),
                    value: "x".into(),
                }],
                samples: vec![v1::Sample {
                    value: 1.0,
                    timestamp: 1,
                }],
            }],
        };
        assert!(
            run("", &snappy(&nameless.encode_to_vec()))
                .unwrap_err()
                .contains("__name__")
        );
        let bad_ref = v2::Request {
            symbols: vec!["".into()],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![0, 7],
                samples: vec![],
            }],
        };
        let ct = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
        assert!(
            run(ct, &snappy(&bad_ref.encode_to_vec()))
                .unwrap_err()
                .contains("outside")
        );
    }
}
