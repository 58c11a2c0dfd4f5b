//! `Content-Encoding` of pushed bodies on the paths whose decoders read plain text: Influx
//! line protocol (Telegraf's `influxdb_v2` output gzips by default) and Pushgateway pushes.
//!
//! Gzip is inflated here, natively, rather than in each decoder: `influx` and `prom-text` are
//! `no_std` guests that would each need an inflater of their own, the decode ABI carries no
//! size limit to cap it by, and on 32-bit ARM the interpreted guest would inflate ~10x slower.
//! flate2 (pure Rust miniz_oxide) is already linked for the HTTP client's gzip responses. The
//! inflated body is capped at `max_body_bytes`, read no further than one byte past it, so a
//! compressed bomb costs at most that much memory. Remote write (snappy) and OTLP (gzip,
//! inflated by its decoder) pass their bodies through untouched.

use crate::source::{Reason, Reject};
use std::io::Read as _;

/// How a body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No `Content-Encoding`, or `identity`.
    Identity,
    /// `gzip` (or `x-gzip`).
    Gzip,
}

impl Encoding {
    /// The encoding a `Content-Encoding` header names.
    ///
    /// # Errors
    /// [`Reason::UnsupportedEncoding`] for anything but gzip and identity (several codings
    /// included), naming it.
    pub fn of(header: Option<&str>) -> Result<Self, Reject> {
        let Some(h) = header.map(str::trim).filter(|h| !h.is_empty()) else {
            return Ok(Self::Identity);
        };
        if h.eq_ignore_ascii_case("identity") {
            Ok(Self::Identity)
        } else if h.eq_ignore_ascii_case("gzip") || h.eq_ignore_ascii_case("x-gzip") {
            Ok(Self::Gzip)
        } else {
            Err(Reject::new(
                Reason::UnsupportedEncoding,
                format!("Content-Encoding `{h}` is not supported here; send gzip or identity"),
            ))
        }
    }
}

/// Inflates a gzip `body` (one or more members) to at most `max` bytes.
///
/// # Errors
/// [`Reason::TooLarge`] past `max`; [`Reason::Malformed`] for a body that is not gzip.
pub fn gunzip(body: &[u8], max: u64) -> Result<Vec<u8>, Reject> {
    let mut out = Vec::with_capacity(body.len().saturating_mul(4).min(1 << 20));
    flate2::read::MultiGzDecoder::new(body)
        .take(max.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Reject::new(Reason::Malformed, format!("body is not valid gzip: {e}")))?;
    if out.len() as u64 > max {
        return Err(Reject::new(
            Reason::TooLarge,
            format!("gzip body inflates to more than max_body_bytes {max}"),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write as _;

    fn gzip(b: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gzip_and_identity_are_known_and_others_refused() {
        assert_eq!(Encoding::of(None).unwrap(), Encoding::Identity);
        assert_eq!(Encoding::of(Some("")).unwrap(), Encoding::Identity);
        assert_eq!(Encoding::of(Some("Identity")).unwrap(), Encoding::Identity);
        assert_eq!(Encoding::of(Some("GZIP")).unwrap(), Encoding::Gzip);
        assert_eq!(Encoding::of(Some("x-gzip")).unwrap(), Encoding::Gzip);
        for bad in ["br", "deflate", "snappy", "gzip, gzip"] {
            let r = Encoding::of(Some(bad)).unwrap_err();
            assert_eq!(r.reason, Reason::UnsupportedEncoding);
            assert!(r.detail.contains(bad), "{}", r.detail);
        }
    }

    #[test]
    fn inflation_stops_at_the_limit() {
        let text = b"cpu,host=a usage=1\n".repeat(100);
        let mut two = gzip(&text[..50]);
        two.extend(gzip(&text[50..]));
        assert_eq!(gunzip(&two, 10_000).unwrap(), text);
        assert_eq!(gunzip(&gzip(&text), text.len() as u64).unwrap(), text);
        let r = gunzip(&gzip(&text), text.len() as u64 - 1).unwrap_err();
        assert_eq!(r.reason, Reason::TooLarge);
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 100_000);
        assert_eq!(gunzip(&bomb, 4 << 20).unwrap_err().reason, Reason::TooLarge);
        let r = gunzip(b"cpu usage=1\n", 1000).unwrap_err();
        assert_eq!(r.reason, Reason::Malformed);
        assert!(r.detail.contains("not valid gzip"), "{}", r.detail);
    }
}
