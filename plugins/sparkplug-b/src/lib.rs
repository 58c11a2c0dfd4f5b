//! The `sparkplug-b` decoder: Eclipse Sparkplug B 3.0 messages that edge nodes publish to an
//! MQTT broker under `spBv1.0/<group>/<type>/<edge node>[/<device>]`.
//!
//! Sparkplug sends a metric's name and data type once, in the birth certificate (NBIRTH for
//! the edge node, DBIRTH per device), and later values by a numeric alias (NDATA, DDATA). So
//! this decoder, unlike the others, is stateful: [`Sparkplug`] keeps the births of every edge
//! node it has seen and resolves data against them. The host hands one source's messages to
//! one decoder instance, one at a time, in the order they arrive (sdk/README.md, "Decoder
//! state").
//!
//! - Births: each metric's values become samples; names, aliases and types are remembered.
//! - Data: each metric is resolved by alias (or name) against the birth. Data for a metric or
//!   node the decoder has no birth of refuses the message, with the topic and why: the birth
//!   state lives only in this instance's memory, so after a restart of magpie, a reload, or a
//!   fault that recreated the plugin, data is refused (counted in `magpie_ingest_rejects`,
//!   logged with the topic) until the edge node's next birth. Sparkplug's remedy, a Rebirth
//!   command (NCMD), is not sent: magpie only reads.
//! - Deaths: NDEATH (with the `bdSeq` of the current session; one from an older session is
//!   ignored) and DDEATH end the node's or device's series with Prometheus staleness markers
//!   (the NaN of [`STALE_NAN`]), which the WAL stores bit for bit and remote write receivers
//!   understand: an instant query finds nothing after it.
//! - `seq` gaps, deaths of older sessions and metrics whose types are not numbers (strings,
//!   bytes, data sets, templates, ...) are logged as warnings; they do not refuse the message.
//!
//! Labels: `group`, `edge_node` and, for devices, `device`; the metric name is the Sparkplug
//! name with every character outside `[a-zA-Z0-9_:]` made `_` ([`sanitise`]). Int, UInt,
//! Float, Double and Boolean (0/1) metrics are stored; a metric's own timestamp is used, else
//! the payload's, else the receive time. `bdSeq` and the `Node Control/*` and
//! `Device Control/*` metrics are protocol bookkeeping and are not stored.
//!
//! [`Sparkplug::decode`] is the whole logic and compiles natively for tests; on wasm32 the
//! crate is the plugin.
//!
//! # Example
//!
//! ```toml
//! [[ingest]]
//! name = "plant"
//! source = "mqtt"
//! url = "mqtt://127.0.0.1:1883"
//! topics = ["spBv1.0/#"]
//! qos = 1
//! plugin = "sparkplug-b"
//! ```

pub mod proto;
mod session;
pub mod topic;

pub use session::{Out, Outcome, STALE_NAN, Sparkplug, sanitise};

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{DecodeRequest, Level, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error, log};

    struct SparkplugB(super::Sparkplug);

    impl Decoder for SparkplugB {
        fn init(_name: &str, config: &Value) -> Result<Self, Error> {
            config.expect_table(&[]).map_err(Error::new)?;
            Ok(Self(super::Sparkplug::new()))
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            let outcome = self
                .0
                .decode(
                    req.context(),
                    req.body(),
                    req.receive_time_ms(),
                    &mut |name, labels, value, ts| {
                        out.sample(name, labels.iter().copied(), value, ts)
                            .map_err(|_| "the host took no more samples".into())
                    },
                )
                .map_err(Error::new)?;
            for n in &outcome.notes {
                log(Level::Warn, n);
            }
            Ok(())
        }
    }

    magpie_sdk::export_decoder!(SparkplugB);
}

#[cfg(test)]
mod tests;
