//! Section 10, private networks (docs/SECURITY.md, "Private networks"): a
//! large fetch with `--secret` on every program beside the same fetch in
//! the clear, in the same run (the plain node sends with sendfile, the
//! private one reads, encrypts and writes); the peak memory of node and
//! client with the secret; the cost of a handshake; and the cipher choice
//! (snow's AEADs on 64 KiB messages, one core, encrypt plus decrypt).

use std::net::SocketAddr;
use std::os::unix::net::UnixStream;
use std::process::Command;
use std::time::Instant;

use net::exchange::{self, Timeouts};
use net::secure::{Identity, KeyKind, NetworkKeys, Security, handshake};
use proto::{Request, Response};

use crate::Settings;
use crate::procs::{self, Proc};
use crate::report::{Row, Table, median, mib, show_runs};

const SECRET: &str = "p2p-bench private network secret, long and random enough";
const RSS_LIMIT_KIB: u64 = 16 * 1024;
/// Exchanges (and in-process handshakes) timed for the handshake figure.
const HANDSHAKES: usize = 200;

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let (share, _, len) = crate::transfer::shared_big_file(s, "secure")?;

    let (_plain_relay, plain_at) =
        procs::start_relay(&s.bins, s.tmp.join("secure-plain-relay.log"))?;
    let plain_node = procs::start_node(
        &s.bins,
        plain_at,
        &share,
        s.tmp.join("secure-plain-node.log"),
    )?;
    let (_relay, at) = procs::start_relay_with(
        &s.bins,
        s.tmp.join("secure-relay.log"),
        &["--secret", SECRET],
    )?;
    let mut cmd = Command::new(s.bins.path("peer-node"));
    cmd.arg("127.0.0.1")
        .arg(at.port().to_string())
        .arg(&share)
        .args(["--bind", "127.0.0.1", "--secret", SECRET, "--key"])
        .arg(s.tmp.join("secure-node.key"));
    let mut node = Proc::spawn("peer-node", cmd, s.tmp.join("secure-node.log"))?;
    node.wait_for("registered with relay")?;

    let fetch = |relay: SocketAddr, node: &Proc, secret: bool| -> Result<(f64, u64, u64), String> {
        node.reset_peak()?;
        let mut args = vec![
            "127.0.0.1".to_string(),
            relay.port().to_string(),
            "big.bin".into(),
        ];
        if secret {
            args.extend(["--secret".to_string(), SECRET.to_string()]);
        }
        let run = procs::run_client(&s.bins, &args, &s.tmp.join("secure-client.log"))?;
        Ok((
            run.elapsed.as_secs_f64(),
            node.memory()?.peak_kib,
            run.peak_kib,
        ))
    };
    eprintln!(
        "secure: {} MiB encrypted vs plain, {} runs...",
        s.file_mib, s.runs
    );
    let (mut enc, mut plain) = (Vec::new(), Vec::new());
    let (mut node_peak, mut client_peak) = (0u64, 0u64);
    for run in 0..s.runs {
        // Alternate which goes first.
        for secret in [run % 2 == 0, run % 2 != 0] {
            if secret {
                let (t, n, c) = fetch(at, &node, true)?;
                enc.push(t);
                node_peak = node_peak.max(n);
                client_peak = client_peak.max(c);
            } else {
                plain.push(fetch(plain_at, &plain_node, false)?.0);
            }
        }
    }
    let rate = |secs: &[f64]| -> Vec<f64> {
        secs.iter()
            .map(|t| len as f64 / f64::from(1u32 << 20) / t)
            .collect()
    };
    show_runs("MiB/s, encrypted/plain", &rate(&enc), &rate(&plain));
    let (e, p) = (median(&enc), median(&plain));
    table.add(Row {
        what: format!(
            "10. transfer {} MiB with --secret (AES-256-GCM)",
            s.file_mib
        ),
        ours: format!("{:.2} s ({:.0} MiB/s)", e, median(&rate(&enc))),
        baseline: format!("{:.2} s plain ({:.0} MiB/s)", p, median(&rate(&plain))),
        ratio: Some(e / p),
        target: "time <= 2.0x plain".into(),
        met: Some(e / p <= 2.0),
    });
    for (who, peak) in [("peer-node", node_peak), ("peer-client", client_peak)] {
        table.add(Row {
            what: format!("10. {who} peak RSS with --secret, {} MiB", s.file_mib),
            ours: format!("{:.1} MiB", mib(peak)),
            baseline: "-".into(),
            ratio: None,
            target: "< 16 MiB".into(),
            met: Some(peak < RSS_LIMIT_KIB),
        });
    }
    drop(node);
    drop(plain_node);

    handshakes(s, table, at, plain_at)?;
    ciphers(table);
    Ok(())
}

/// A relay list exchange with and without a handshake, over loopback, and
/// the handshake alone in process (both sides' CPU).
fn handshakes(
    _s: &Settings,
    table: &mut Table,
    private_at: SocketAddr,
    plain_at: SocketAddr,
) -> Result<(), String> {
    eprintln!("secure: {HANDSHAKES} list exchanges with and without a handshake...");
    let keys = NetworkKeys::from_secret(SECRET.as_bytes());
    let identity = Identity::generate().map_err(|e| e.to_string())?;
    let security = Security::private(keys.clone(), identity.clone());
    let timeouts = Timeouts::default();
    let time = |addr: SocketAddr, dial: &net::secure::Dial| -> Result<f64, String> {
        let start = Instant::now();
        match exchange::call_via(addr, &Request::ListNodes, &timeouts, dial) {
            Ok(Response::Nodes(_)) => Ok(start.elapsed().as_secs_f64() * 1000.0),
            other => Err(format!("list at {addr}: {other:?}")),
        }
    };
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..HANDSHAKES {
        with.push(time(private_at, &security.to_relay())?);
        without.push(time(plain_at, &net::secure::Dial::Plain)?);
    }
    let mut alone = Vec::new();
    for _ in 0..HANDSHAKES {
        let (mut a, mut b) = UnixStream::pair().map_err(|e| e.to_string())?;
        let server_keys = keys.clone();
        let server_id = identity.clone();
        let start = Instant::now();
        let t = std::thread::spawn(move || {
            handshake::respond(&mut b, &server_keys, &server_id).is_ok()
        });
        handshake::initiate(&mut a, KeyKind::Relay, &keys.relay, &identity, None)
            .map_err(|e| e.to_string())?;
        if !t.join().unwrap_or(false) {
            return Err("the in-process handshake failed".into());
        }
        alone.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    let (w, p, h) = (median(&with), median(&without), median(&alone));
    table.add(Row {
        what: "10. handshake cost: relay list exchange with --secret".into(),
        ours: format!("{w:.2} ms"),
        baseline: format!("{p:.2} ms plain"),
        ratio: Some(w / p),
        target: "stated".into(),
        met: None,
    });
    table.add(Row {
        what: "10. handshake alone, both sides in one process (4 X25519, 2 threads)".into(),
        ours: format!("{h:.2} ms"),
        baseline: "-".into(),
        ratio: None,
        target: "stated".into(),
        met: None,
    });
    Ok(())
}

/// snow's ciphers on 64 KiB transport messages: why AESGCM through ring.
fn ciphers(table: &mut Table) {
    use snow::resolvers::{BoxedCryptoResolver, DefaultResolver, FallbackResolver, RingResolver};
    let total = 256usize << 20;
    let mut results = Vec::new();
    for cipher in ["AESGCM", "ChaChaPoly"] {
        for (name, ring) in [("ring", true), ("RustCrypto", false)] {
            let resolver = || -> BoxedCryptoResolver {
                if ring {
                    Box::new(FallbackResolver::new(
                        Box::new(RingResolver),
                        Box::new(DefaultResolver),
                    ))
                } else {
                    Box::new(DefaultResolver)
                }
            };
            let Some((mut i, mut r)) = transport_pair(cipher, resolver) else {
                continue;
            };
            let plain = vec![0x5au8; 65_519];
            let (mut ct, mut out) = (vec![0u8; 65_535], vec![0u8; 65_535]);
            let start = Instant::now();
            let mut done = 0;
            while done < total {
                let Ok(n) = i.write_message(&plain, &mut ct) else {
                    break;
                };
                if r.read_message(&ct[..n], &mut out).is_err() {
                    break;
                }
                done += plain.len();
            }
            let rate = done as f64 / f64::from(1u32 << 20) / start.elapsed().as_secs_f64();
            results.push(format!("{cipher} ({name}) {rate:.0} MiB/s"));
        }
    }
    table.note(format!(
        "cipher choice, 64 KiB messages encrypted and decrypted on one core: {}; the pattern \
         uses AESGCM through ring (X25519 and BLAKE2s from snow's default resolver)",
        results.join(", ")
    ));
}

fn transport_pair(
    cipher: &str,
    resolver: impl Fn() -> snow::resolvers::BoxedCryptoResolver,
) -> Option<(snow::TransportState, snow::TransportState)> {
    let params: snow::params::NoiseParams = format!("Noise_XXpsk3_25519_{cipher}_BLAKE2s")
        .parse()
        .ok()?;
    let psk = [7u8; 32];
    let ki = snow::Builder::with_resolver(params.clone(), resolver())
        .generate_keypair()
        .ok()?;
    let kr = snow::Builder::with_resolver(params.clone(), resolver())
        .generate_keypair()
        .ok()?;
    let mut i = snow::Builder::with_resolver(params.clone(), resolver())
        .local_private_key(&ki.private)
        .ok()?
        .psk(3, &psk)
        .ok()?
        .build_initiator()
        .ok()?;
    let mut r = snow::Builder::with_resolver(params, resolver())
        .local_private_key(&kr.private)
        .ok()?
        .psk(3, &psk)
        .ok()?
        .build_responder()
        .ok()?;
    let (mut a, mut b) = (vec![0u8; 1024], vec![0u8; 1024]);
    let n = i.write_message(&[], &mut a).ok()?;
    r.read_message(&a[..n], &mut b).ok()?;
    let n = r.write_message(&[], &mut a).ok()?;
    i.read_message(&a[..n], &mut b).ok()?;
    let n = i.write_message(&[], &mut a).ok()?;
    r.read_message(&a[..n], &mut b).ok()?;
    Some((i.into_transport_mode().ok()?, r.into_transport_mode().ok()?))
}
