//! The wasm32 plugin: the SDK's exporter glue around [`RemoteWrite`].

use magpie_sdk::abi::{
    ExportBatch, ExportExemplar, ExportOutcome, FamilyMeta, Payload, ResponseHead, Value,
};
use magpie_sdk::guest::{Error, ExportInput, Exporter};

use crate::RemoteWrite;

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

    fn export_fallback(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
        self.0.export_fallback(batch).map_err(Error::new)
    }

    fn export_exemplars(
        &mut self,
        batch: &ExportBatch<'_>,
        exemplars: &[ExportExemplar<'_>],
        fallback: bool,
    ) -> Result<Vec<Payload<'static>>, Error> {
        self.0
            .export_exemplars(batch, exemplars, fallback)
            .map_err(Error::new)
    }

    fn export_input(&mut self, input: &ExportInput<'_>) -> Result<Vec<Payload<'static>>, Error> {
        // The label bytes go into the request as the host wrote them.
        self.0.export_raw(&input.read_raw()?).map_err(Error::new)
    }

    fn export_metadata(
        &mut self,
        families: &[FamilyMeta<'_>],
    ) -> Result<Vec<Payload<'static>>, Error> {
        self.0.export_metadata(families).map_err(Error::new)
    }

    fn outcome(&mut self, head: &ResponseHead<'_>) -> ExportOutcome {
        // A 2.0 request refused as such reads `Unsupported`: the host then asks for the batch
        // in 1.0 and logs the change, naming the exporter and its URL.
        self.0.outcome(head)
    }
}

magpie_sdk::export_exporter!(Plugin);
