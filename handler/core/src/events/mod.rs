//! The event catalog: which events exist, how an incoming message is decoded and validated, and how
//! non-public events map to public ones. Events and rules are configuration: a catalog file (`file.rs`).

pub mod catalog;
pub mod contents;
pub mod decode;
pub mod docs;
pub mod enricher;
pub mod fields;
pub mod file;
pub mod mapping;
pub mod payload;
pub mod spec;

pub use catalog::public_events;
pub use contents::Catalog;
pub use decode::{decode, decode_value, MAX_EVENT_BYTES};
pub use enricher::Enricher;
pub use payload::{body, Enrichment, Event, Kind, Payload};
pub use spec::EventSpec;
