//! Arbitrary bytes into the decoder, as a relay, a node or a client would
//! receive them: whatever the bytes, nothing panics, nothing allocates past a
//! frame limit (libFuzzer's -rss_limit_mb and -malloc_limit_mb catch that),
//! and whatever does decode re-encodes to exactly the bytes it came from
//! (the encoding is canonical, see docs/PROTOCOL.md).

#![no_main]

use std::io::{self, Read};

use libfuzzer_sys::fuzz_target;
use proto::frame::{self, HEADER_LEN};
use proto::message::Message;
use proto::{Request, Response};

/// Hands out the input a few bytes per read call, the way a socket does, so
/// the frame reader's loops over short reads are exercised too.
struct Trickle<'a> {
    data: &'a [u8],
    step: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Reads one frame of type `M` from `data`; if it decodes, the bytes it
/// consumed must be exactly its encoding.
fn read_frame<M: Message + std::fmt::Debug>(data: &[u8], step: usize) {
    let mut reader = Trickle { data, step };
    if let Ok(msg) = frame::read::<M>(&mut reader) {
        let consumed = data.len() - reader.data.len();
        let encoded = frame::encode(&msg).expect("a decoded message encodes");
        assert_eq!(encoded, &data[..consumed], "{msg:?} is not canonical");
    }
}

/// Decodes `body` as a frame body of type `M`; same round-trip rule.
fn decode_body<M: Message + std::fmt::Debug>(body: &[u8]) {
    if let Ok(msg) = frame::decode::<M>(body) {
        let encoded = frame::encode(&msg).expect("a decoded message encodes");
        assert_eq!(&encoded[HEADER_LEN..], body, "{msg:?} is not canonical");
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks how many bytes each read call yields (1 to 256).
    let step = data.first().map_or(1, |b| usize::from(*b) + 1);
    read_frame::<Request>(data, step);
    read_frame::<Response>(data, step);
    read_frame::<Request>(data, usize::MAX);
    read_frame::<Response>(data, usize::MAX);
    decode_body::<Request>(data);
    decode_body::<Response>(data);
});
