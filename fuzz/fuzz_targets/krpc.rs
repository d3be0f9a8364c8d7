//! Arbitrary datagrams into the KRPC decoder of the DHT (mainline, patched:
//! docs/MAINLINE_TID.md), as every DHT node of ours decodes each datagram
//! it receives, from anyone: nothing panics, no stack overflows (deep
//! nesting is refused first), nothing allocates past libFuzzer's limits,
//! and what decodes encodes again (as a reply echoes a query's parts) into
//! something that decodes. Inputs are cut at 2 048 bytes, mainline's
//! receive buffer.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let datagram = &data[..data.len().min(2048)];
    mainline::__fuzz::decode_round_trip(datagram);
});
