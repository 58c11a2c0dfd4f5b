use crate::Error;
use bytes::{Buf, Bytes};
use flate2::write::GzDecoder;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::io::Write;

/// Compressed input fed to the gzip decoder at a time: deflate expands at most ~1032:1, so
/// decoded output held at once stays under ~0.5 MiB whatever the body.
const GZIP_STEP: usize = 512;

/// A response body read in chunks, decoded from gzip when the server compressed it.
#[derive(Debug)]
pub struct Body {
    incoming: Incoming,
    /// Raw bytes received and not consumed yet.
    raw: Bytes,
    gzip: Option<GzDecoder<Vec<u8>>>,
    /// Decoded bytes not handed out yet, from `out_at`.
    out_at: usize,
    limit: u64,
    produced: u64,
    done: bool,
}

impl Body {
    pub(crate) fn new(incoming: Incoming, gzip: bool, limit: u64) -> Self {
        Self {
            incoming,
            raw: Bytes::new(),
            gzip: gzip.then(|| GzDecoder::new(Vec::new())),
            out_at: 0,
            limit,
            produced: 0,
            done: false,
        }
    }

    /// Reads up to `buf.len()` decoded bytes; 0 means the end.
    ///
    /// # Errors
    /// [`Error::BodyLimit`] past the limit; connection and decoding errors.
    pub async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        if buf.is_empty() {
            return Ok(0);
        }
        loop {
            let n = self.take_ready(buf)?;
            if n > 0 {
                return self.count(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.incoming.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.raw = data;
                    }
                }
                Some(Err(e)) => {
                    return Err(Error::Body {
                        reason: e.to_string(),
                    });
                }
                None => {
                    self.done = true;
                    if let Some(gz) = &mut self.gzip {
                        gz.try_finish().map_err(|e| Error::Body {
                            reason: format!("gzip: {e}"),
                        })?;
                    }
                }
            }
        }
    }

    fn count(&mut self, n: usize) -> Result<usize, Error> {
        self.produced += n as u64;
        if self.limit > 0 && self.produced > self.limit {
            return Err(Error::BodyLimit { limit: self.limit });
        }
        Ok(n)
    }

    /// Moves bytes already received (decoding them when compressed) into `buf`.
    fn take_ready(&mut self, buf: &mut [u8]) -> Result<usize, Error> {
        let Some(gz) = &mut self.gzip else {
            let n = buf.len().min(self.raw.len());
            self.raw.copy_to_slice(&mut buf[..n]);
            return Ok(n);
        };
        loop {
            let out = gz.get_mut();
            if self.out_at < out.len() {
                let n = buf.len().min(out.len() - self.out_at);
                buf[..n].copy_from_slice(&out[self.out_at..self.out_at + n]);
                self.out_at += n;
                if self.out_at == out.len() {
                    out.clear();
                    self.out_at = 0;
                }
                return Ok(n);
            }
            if self.raw.is_empty() {
                return Ok(0);
            }
            let step = self.raw.len().min(GZIP_STEP);
            let chunk = self.raw.split_to(step);
            gz.write_all(&chunk).map_err(|e| Error::Body {
                reason: format!("gzip: {e}"),
            })?;
        }
    }
}
