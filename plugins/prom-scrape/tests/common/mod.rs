//! What the test suites share: a sink that resolves repeat records as the collector does,
//! and a reader that serves a body in chunks. Not every suite uses both.

#![allow(dead_code)]

use prom_scrape::{OwnedSample, Sink, SinkError, VecSink};

/// Resolves repeat records as the collector does: by position, against the samples of the
/// last parse it was offered as `order`.
#[derive(Default)]
pub struct Resolving {
    /// The samples of the last parse, by position.
    pub last: Vec<OwnedSample>,
    /// This parse's samples, repeats resolved.
    pub got: VecSink,
    /// Repeat records received.
    pub repeats: usize,
}

impl Sink for Resolving {
    fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &str)],
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), SinkError> {
        self.got.sample(name, labels, value, timestamp_ms)
    }

    fn repeat(&mut self, value: f64, timestamp_ms: Option<i64>) -> Result<(), SinkError> {
        let at = self.got.samples.len();
        let Some(last) = self.last.get(at) else {
            return Err(SinkError::Rejected(format!(
                "repeat of position {at}, past the last parse's {} samples",
                self.last.len()
            )));
        };
        self.got.samples.push(OwnedSample {
            value,
            timestamp_ms,
            ..last.clone()
        });
        self.repeats += 1;
        Ok(())
    }
}

/// Serves a body in chunks of the given sizes, cycling through them.
pub struct Chunked<'a> {
    pub body: &'a [u8],
    pub sizes: &'a [usize],
    pub call: usize,
}

impl embedded_io::ErrorType for Chunked<'_> {
    type Error = core::convert::Infallible;
}

impl embedded_io::Read for Chunked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let want = self.sizes[self.call % self.sizes.len()];
        self.call += 1;
        let n = want.min(buf.len()).min(self.body.len());
        buf[..n].copy_from_slice(&self.body[..n]);
        self.body = &self.body[n..];
        Ok(n)
    }
}
