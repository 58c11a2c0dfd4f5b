//! The smallest magpie decoder, a template to copy: every `<name> <value>` line of a pushed
//! message becomes a sample stamped with the receive time; any other line refuses the message.
//!
//! # Example
//!
//! ```toml
//! [[ingest]]
//! name = "lines"
//! source = "mqtt"
//! url = "mqtt://127.0.0.1:1883"
//! topics = ["lines/#"]
//! plugin = "hello-decoder"
//! ```
#![cfg_attr(target_arch = "wasm32", no_std)]

/// Parses one `<name> <value>` line.
///
/// # Errors
/// A line of another shape, in words.
pub fn line(l: &str) -> Result<(&str, f64), &'static str> {
    let (name, value) = l.split_once(' ').ok_or("a line must be `<name> <value>`")?;
    let value = value
        .trim()
        .parse()
        .map_err(|_| "the value is not a number")?;
    Ok((name, value))
}

#[cfg(target_arch = "wasm32")]
mod plugin {
    use magpie_sdk::abi::{DecodeRequest, Value};
    use magpie_sdk::guest::{Decoder, Emitter, Error};

    struct Hello;

    impl Decoder for Hello {
        fn init(_name: &str, _config: &Value) -> Result<Self, Error> {
            Ok(Self)
        }

        fn decode(&mut self, req: &DecodeRequest<'_>, out: &mut Emitter) -> Result<(), Error> {
            let text = core::str::from_utf8(req.body()).map_err(|_| Error::new("not UTF-8"))?;
            for (i, l) in text.lines().filter(|l| !l.is_empty()).enumerate() {
                let (name, value) = super::line(l)
                    .map_err(|e| Error::new(alloc::format!("line {}: {e}", i + 1)))?;
                out.sample(name, [("topic", req.context())], value, None)?;
            }
            Ok(())
        }
    }

    extern crate alloc;
    magpie_sdk::export_decoder!(Hello);
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_parse_or_say_why_not() {
        assert_eq!(super::line("room_temp 21.5"), Ok(("room_temp", 21.5)));
        assert!(super::line("room_temp").is_err());
        assert!(super::line("room_temp warm").is_err());
    }
}
