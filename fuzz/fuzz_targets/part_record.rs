//! Arbitrary bytes as a part's record (peer-client's `part.rs`), as a
//! client finds it beside a target after an earlier run, or damaged: it
//! decodes or is refused, never panics, and whatever decodes re-encodes to
//! exactly the bytes it came from.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peer_client::part::Record;

fuzz_target!(|data: &[u8]| {
    if let Ok(record) = Record::decode(data) {
        assert_eq!(record.encode(), data);
    }
});
