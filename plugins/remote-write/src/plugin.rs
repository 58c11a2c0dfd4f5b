//! The wasm32 plugin: the SDK's exporter glue around [`RemoteWrite`].

use magpie_sdk::abi::{
    ExportBatch, ExportOutcome, FamilyMeta, Level, Payload, ResponseHead, Value,
};
use magpie_sdk::guest::{self, Error, Exporter};

use crate::{Protocol, RemoteWrite, response};

struct Plugin(RemoteWrite);

impl Exporter for Plugin {
    fn init(_name: &str, config: &Value) -> Result<Self, Error> {
        RemoteWrite::from_table(config)
            .map(Self)
            .map_err(Error::new)
    }

    fn export(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
        self.0.export(batch).map_err(Error::new)
    }

    fn export_metadata(
        &mut self,
        families: &[FamilyMeta<'_>],
    ) -> Result<Vec<Payload<'static>>, Error> {
        self.0.export_metadata(families).map_err(Error::new)
    }

    fn outcome(&mut self, head: &ResponseHead<'_>) -> ExportOutcome {
        let outcome = self.0.outcome(head);
        let ResponseHead::V1 { status, .. } = head;
        if self.0.config().protocol == Protocol::V2
            && (200..300).contains(status)
            && !response::confirms_written(head)
        {
            // Samples are dropped here: say why, and what fixes it.
            guest::log(
                Level::Error,
                &format!(
                    "The receiver answered status {status} to a remote write 2.0 request without any X-Prometheus-Remote-Write-*-Written header, so it is likely a 1.0 receiver that ignored the request; its samples are dropped. Set protocol = \"1.0\" for this receiver."
                ),
            );
        }
        outcome
    }
}

magpie_sdk::export_exporter!(Plugin);
