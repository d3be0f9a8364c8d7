//! Arbitrary text into the link parser (`proto::link`), as a user pastes
//! it from anywhere: whatever the bytes, nothing panics, and whatever parses
//! is canonical: printing it and parsing that gives back the same link, and
//! printing that again gives the same text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use proto::Link;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // Text without the scheme gets it in front, so the fuzzer spends its
    // time on the query rather than on finding the prefix.
    let prefixed;
    let text = if Link::looks_like(text) {
        text
    } else {
        prefixed = format!("p2p-share:?{text}");
        prefixed.as_str()
    };
    if let Ok(link) = text.parse::<Link>() {
        let printed = link.to_string();
        let again: Link = printed.parse().expect("a printed link parses");
        assert_eq!(again, link);
        assert_eq!(again.to_string(), printed);
    }
});
