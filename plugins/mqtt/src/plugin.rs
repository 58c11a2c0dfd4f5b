//! The wasm32 plugin: the SDK's exporter glue around [`Mqtt`].

use magpie_sdk::abi::{ExportBatch, Payload, Value};
use magpie_sdk::guest::{Error, Exporter};

use crate::Mqtt;

struct Plugin(Mqtt);

impl Exporter for Plugin {
    fn init(_name: &str, config: &Value) -> Result<Self, Error> {
        Mqtt::from_table(config).map(Self).map_err(Error::new)
    }

    fn export(&mut self, batch: &ExportBatch<'_>) -> Result<Vec<Payload<'static>>, Error> {
        self.0.export(batch).map_err(Error::new)
    }
}

magpie_sdk::export_exporter!(Plugin);
