//! The event catalog: which events exist, how an incoming message is decoded and validated, and how
//! non-public events map to public ones. The one place to add an event (see `catalog.rs`).

pub mod catalog;
pub mod decode;
pub mod docs;
pub mod fields;
pub mod mapping;
pub mod payload;

pub use catalog::{EventSpec, CATALOG};
pub use decode::{decode, decode_value, MAX_EVENT_BYTES};
pub use mapping::{public_events, MAPPINGS};
pub use payload::{Event, Payload};
