//! A test exporter: encodes batches as the `remote-write` plugin does (1.0, its defaults), but
//! fails every batch that holds a series of the metric named by the config key `poison`, each
//! time it is asked. Tests use it for a batch no number of retries can deliver.

use magpie_sdk::abi::ExportBatch;

/// True when `batch` holds a series named `poison`.
#[must_use]
pub fn poisoned(batch: &ExportBatch<'_>, poison: &str) -> bool {
    !poison.is_empty()
        && batch.series().any(|s| {
            s.labels
                .iter()
                .any(|l| l.name == "__name__" && l.value == poison)
        })
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{ExportBatch, ExportOutcome, Payload, ResponseHead, Value};
    use magpie_sdk::guest::{Error, Exporter};
    use remote_write::RemoteWrite;

    struct Hostile {
        poison: String,
        inner: RemoteWrite,
    }

    impl Exporter for Hostile {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            let poison = config
                .get("poison")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .into();
            Ok(Self {
                poison,
                inner: RemoteWrite::new(remote_write::Config::default()),
            })
        }

        fn export(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
            if super::poisoned(batch, &self.poison) {
                return Err(Error::new(format!(
                    "refusing a batch holding `{}`",
                    self.poison
                )));
            }
            self.inner.export(batch).map_err(Error::new)
        }

        fn outcome(&mut self, head: &ResponseHead<'_>) -> ExportOutcome {
            self.inner.outcome(head)
        }
    }

    magpie_sdk::export_exporter!(Hostile);
}

#[cfg(test)]
mod tests {
    use super::*;
    use magpie_sdk::abi::{ExportBatchBuilder, Label};

    #[test]
    fn only_batches_with_the_metric_are_poisoned() {
        let mut b = ExportBatchBuilder::default();
        b.series([Label::new("__name__", "ok"), Label::new("job", "poison")]);
        b.point(1, 1.0);
        let clean = b.finish();
        assert!(!poisoned(&clean, "poison"));
        let mut b = ExportBatchBuilder::default();
        b.series([Label::new("__name__", "ok")]);
        b.point(1, 1.0);
        b.series([Label::new("__name__", "poison")]);
        b.point(1, 2.0);
        assert!(poisoned(&b.finish(), "poison"));
        assert!(!poisoned(&clean, ""));
    }
}
