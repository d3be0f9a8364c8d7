//! The `Accept` header of a scrape (crates/metrics/src/format.rs): any
//! text a client sends picks a format, never panics, and a header that
//! names neither format gets OpenMetrics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use metrics::Format;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let format = Format::from_accept(Some(&text));
    let lower = text.to_ascii_lowercase();
    if !lower.contains("text/plain") {
        assert_eq!(format, Format::OpenMetrics);
    }
});
