//! Wall-clock time as samples carry it: the collector's one clock, from the transport.

pub use magpie_transport::clock::now_ms;
