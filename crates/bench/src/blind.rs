//! Section 14 (`blind`): the blind index of a private network beside the
//! plain index, in the same run.
//!
//! - Two relays, each with N fake nodes x F files (the same names, sizes
//!   and hashes; fake nodes from their own loopback addresses, as in
//!   section 7): a plain relay fed plain catalogs, and a private relay
//!   (`--relay-key`) fed tags and sealed records by fake members, each
//!   with its own static key and a handshake per exchange. Measured: each
//!   relay's RSS with the full index, and who-has exchanges against each,
//!   interleaved. A private exchange includes its Noise handshake, so the
//!   relay's own who-has work (lookup and answer, in this process, over
//!   the relay crate's indexes at the same size) is measured apart.
//! - Listing and search at 10 000 and 100 000 records: a member pages
//!   through every record of a private relay, opens and checks each, and
//!   searches them; time and bytes, beside the plain relay's one-frame
//!   search (which stops at 10 000 hits).

use std::io::Read;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::thread;
use std::time::{Duration, Instant};

use net::exchange::{self, Timeouts};
use net::secure::{Identity, KeyKind, NetworkKeys, Security, handshake};
use net::stream::Socket;
use peer_node::catalog::{Catalog, CatalogForm, CatalogSync, Synced};
use proto::blind::{
    BlindCatalogUpdate, BlindEntry, BlindTarget, IndexKey, Listing, PageRequest, Record,
};
use proto::{
    CatalogEntry, CatalogUpdate, ContentHash, Registration, Request, Response, Target, frame,
};

use crate::Settings;
use crate::load;
use crate::procs;
use crate::report::{Row, Table, median, mib};

const SECRET: &[u8] = b"p2p-bench blind index secret";
const FAKE_PORT: u16 = 20_000;
const THREADS: usize = 8;

pub fn run(s: &Settings, table: &mut Table) -> Result<(), String> {
    let keys = NetworkKeys::from_secret(SECRET);
    let key = IndexKey::of(&keys).ok_or("no index key")?;
    let (n, files) = (s.index_nodes, s.index_files);
    let relay_key = keys.relay.to_hex();

    let (plain_proc, plain) = procs::start_relay_with(
        &s.bins,
        s.tmp.join("blind-plain-relay.log"),
        &["--no-relaying"],
    )?;
    let (blind_proc, blind) = procs::start_relay_with(
        &s.bins,
        s.tmp.join("blind-relay.log"),
        &["--no-relaying", "--relay-key", &relay_key],
    )?;
    eprintln!("{n} fake nodes with {files} files each, on a plain and on a private relay...");
    let began = Instant::now();
    feed(plain, n, files, None)?;
    eprintln!("  plain catalogs in {:.1} s", began.elapsed().as_secs_f64());
    let began = Instant::now();
    feed(blind, n, files, Some((&keys, &key)))?;
    eprintln!("  blind catalogs in {:.1} s", began.elapsed().as_secs_f64());
    let entries = n * files;

    let (pm, bm) = (plain_proc.memory()?, blind_proc.memory()?);
    let (pm, bm) = (mib(pm.rss_kib), mib(bm.rss_kib));
    table.add(Row {
        what: format!("14. relay RSS, {n} nodes x {files} files, blind index"),
        ours: format!("{bm:.1} MiB"),
        baseline: format!("{pm:.1} MiB plain"),
        ratio: Some(bm / pm),
        target: "<= 2".into(),
        met: Some(bm / pm <= 2.0),
    });

    // Who-has, interleaved: a plain exchange, then a blind one (with its
    // handshake), for the same file.
    let member = Security::private(
        keys.clone(),
        Identity::generate().map_err(|e| e.to_string())?,
    );
    let timeouts = Timeouts::default();
    let (mut p, mut b) = (Vec::new(), Vec::new());
    let (mut p_hello, mut b_hello) = (Vec::new(), Vec::new());
    for k in 0..2000usize {
        let (i, j) = ((k * 7919) % n, k % files);
        let name = fake_name(i, j);
        let t = Instant::now();
        match exchange::call(
            plain,
            &Request::WhoHas(Target::Name(name.clone())),
            &timeouts,
        ) {
            Ok(Response::Holders(list)) if list.holders.len() == 1 => {}
            other => return Err(format!("plain who-has answered {other:?}")),
        }
        p.push(t.elapsed().as_secs_f64() * 1e6);
        let target = key.by_name(&name);
        let t = Instant::now();
        match exchange::call_via(
            blind,
            &Request::BlindWhoHas(target),
            &timeouts,
            &member.to_relay(),
        ) {
            Ok(Response::BlindHolders(list)) if list.holders.len() == 1 => {
                let (opened, bad) = key.open_holders(&target, &list);
                if opened.holders.len() != 1 || !bad.is_empty() {
                    return Err(format!("a blind holder did not open: {bad:?}"));
                }
            }
            other => return Err(format!("blind who-has answered {other:?}")),
        }
        b.push(t.elapsed().as_secs_f64() * 1e6);
        // An exchange the relay answers from nothing (the blind one with
        // its handshake): what is left is the index's part.
        let t = Instant::now();
        match exchange::call(plain, &Request::Hello, &timeouts) {
            Ok(Response::Hello) => {}
            other => return Err(format!("hello answered {other:?}")),
        }
        p_hello.push(t.elapsed().as_secs_f64() * 1e6);
        let t = Instant::now();
        match exchange::call_via(blind, &Request::Hello, &timeouts, &member.to_relay()) {
            Ok(Response::Hello) => {}
            other => return Err(format!("hello answered {other:?}")),
        }
        b_hello.push(t.elapsed().as_secs_f64() * 1e6);
    }
    let (p, b) = (median(&p), median(&b));
    let (ph, bh) = (median(&p_hello), median(&b_hello));
    table.add(Row {
        what: format!("14. who-has exchange at {entries} entries, blind (handshake included)"),
        ours: format!("{b:.0} us"),
        baseline: format!("{p:.0} us plain"),
        ratio: Some(b / p),
        target: "-".into(),
        met: None,
    });
    table.add(Row {
        what: "14. who-has exchange less a hello exchange on the same relay".into(),
        ours: format!("{:.0} us blind ({bh:.0} us hello)", b - bh),
        baseline: format!("{:.0} us plain ({ph:.0} us hello)", p - ph),
        ratio: Some((b - bh) / (p - ph)),
        target: "<= 1.5".into(),
        met: Some((b - bh) / (p - ph) <= 1.5),
    });
    drop((plain_proc, blind_proc));

    in_process_who_has(s, &key, table)?;
    listing(s, &keys, &key, 10_000.min(n * files), table)?;
    listing(
        s,
        &keys,
        &key,
        if s.index_nodes >= 1000 {
            100_000
        } else {
            20_000
        },
        table,
    )?;
    Ok(())
}

/// The relay's who-has work alone, blind and plain, over the relay crate's
/// two indexes at the section's size: the lookup and the answer's
/// encoding, as the relay does them for each request.
fn in_process_who_has(s: &Settings, key: &IndexKey, table: &mut Table) -> Result<(), String> {
    let (n, files) = (s.index_nodes, s.index_files);
    let limits = relay::IndexLimits::default();
    let plain = relay::Index::new(limits);
    let blind = relay::BlindIndex::new(limits);
    use relay::registry::Membership;
    for i in 0..n {
        let addr = SocketAddr::from((fake_addr(i), FAKE_PORT));
        plain.joined(addr);
        blind.joined(addr);
        let entries: Vec<CatalogEntry> = (0..files).map(|j| entry(i, j)).collect();
        let sealed: Vec<BlindEntry> = entries.iter().map(|e| seal(key, e)).collect();
        let update = CatalogUpdate {
            registration: registration(),
            base_seq: 0,
            seq: 1,
            reset: true,
            added: entries,
            removed: vec![],
        };
        plain
            .apply(addr, &update.into())
            .map_err(|_| "not listed")?;
        let update = BlindCatalogUpdate {
            registration: registration(),
            base_seq: 0,
            seq: 1,
            reset: true,
            added: sealed,
            removed: vec![],
        };
        blind.apply(addr, &update).map_err(|_| "not listed")?;
    }
    let (mut p, mut b) = (Vec::new(), Vec::new());
    for round in 0..s.runs.max(3) {
        let (mut tp, mut tb) = (Duration::ZERO, Duration::ZERO);
        for k in 0..20_000usize {
            let (i, j) = ((k * 7919 + round) % n, k % files);
            let name = fake_name(i, j);
            let t = Instant::now();
            let answer = Response::Holders(plain.who_has(&Target::Name(name.clone())));
            let bytes = frame::encode(&answer).map_err(|e| e.to_string())?;
            tp += t.elapsed();
            std::hint::black_box(bytes);
            let target = BlindTarget::Name(key.name_tag(&name));
            let t = Instant::now();
            let answer = Response::BlindHolders(blind.who_has(&target));
            let bytes = frame::encode(&answer).map_err(|e| e.to_string())?;
            tb += t.elapsed();
            std::hint::black_box(bytes);
        }
        p.push(tp.as_secs_f64() * 1e9 / 20_000.0);
        b.push(tb.as_secs_f64() * 1e9 / 20_000.0);
    }
    let (p, b) = (median(&p), median(&b));
    table.add(Row {
        what: format!(
            "14. the relay's who-has work (lookup + answer), {} entries, blind",
            n * files
        ),
        ours: format!("{:.2} us", b / 1000.0),
        baseline: format!("{:.2} us plain", p / 1000.0),
        ratio: Some(b / p),
        target: "<= 1.5".into(),
        met: Some(b / p <= 1.5),
    });
    Ok(())
}

/// A member lists every record of a private relay holding `records` of
/// them (100 nodes' catalogs), opens them and searches; beside it, the
/// plain relay's search for the empty text over the same files.
fn listing(
    s: &Settings,
    keys: &NetworkKeys,
    key: &IndexKey,
    records: usize,
    table: &mut Table,
) -> Result<(), String> {
    let per_node = 1000.min(records);
    let nodes = records / per_node;
    let relay_key = keys.relay.to_hex();
    let (_plain_proc, plain) = procs::start_relay_with(
        &s.bins,
        s.tmp.join(format!("list-plain-{records}.log")),
        &["--no-relaying"],
    )?;
    let (_blind_proc, blind) = procs::start_relay_with(
        &s.bins,
        s.tmp.join(format!("list-blind-{records}.log")),
        &["--no-relaying", "--relay-key", &relay_key],
    )?;
    feed(plain, nodes, per_node, None)?;
    feed(blind, nodes, per_node, Some((keys, key)))?;
    let member = Security::private(
        keys.clone(),
        Identity::generate().map_err(|e| e.to_string())?,
    );
    let timeouts = Timeouts::default();
    let (mut bt, mut pt) = (Vec::new(), Vec::new());
    let (mut b_bytes, mut p_bytes, mut pages) = (0usize, 0usize, 0usize);
    for _ in 0..s.runs {
        let t = Instant::now();
        let mut listing = Listing::default();
        let mut cursor = 0;
        b_bytes = 0;
        pages = 0;
        loop {
            let request = Request::BlindList(PageRequest {
                cursor,
                limit: 10_000,
            });
            let page = match exchange::call_via(blind, &request, &timeouts, &member.to_relay()) {
                Ok(Response::SealedPage(page)) => page,
                other => return Err(format!("list answered {other:?}")),
            };
            b_bytes += frame::encode(&Response::SealedPage(page.clone()))
                .map_err(|e| e.to_string())?
                .len();
            pages += 1;
            listing.add_page(key, &page);
            match page.next {
                Some(next) => cursor = next,
                None => break,
            }
        }
        let found = listing.search("file-0042", 100);
        bt.push(t.elapsed().as_secs_f64() * 1000.0);
        if listing.len() != records || !listing.bad.is_empty() || found.hits.len() != nodes {
            return Err(format!(
                "the listing holds {} files ({} bad), the search {} hits",
                listing.len(),
                listing.bad.len(),
                found.hits.len()
            ));
        }
        let t = Instant::now();
        let request = Request::Search(proto::SearchQuery {
            text: String::new(),
            limit: u32::MAX,
        });
        match exchange::call(plain, &request, &timeouts) {
            Ok(answer @ Response::SearchResults(_)) => {
                p_bytes = frame::encode(&answer).map_err(|e| e.to_string())?.len();
            }
            other => return Err(format!("plain search answered {other:?}")),
        }
        pt.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (b, p) = (median(&bt), median(&pt));
    let plain_hits = records.min(proto::MAX_LIST_FILES);
    table.add(Row {
        what: format!("14. list and search {records} records (blind: every page, opened)"),
        ours: format!("{b:.0} ms, {:.1} MB in {pages} pages", b_bytes as f64 / 1e6),
        baseline: format!(
            "{p:.0} ms, {:.1} MB plain ({plain_hits} hits, one frame)",
            p_bytes as f64 / 1e6
        ),
        ratio: Some(b / p),
        target: if records >= 100_000 {
            "< 2 s".into()
        } else {
            "-".into()
        },
        met: (records >= 100_000).then_some(b < 2000.0),
    });
    Ok(())
}

fn fake_addr(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 3, (i / 250) as u8, (i % 250 + 1) as u8)
}

fn fake_name(i: usize, j: usize) -> String {
    format!("node{i}/file-{j:04}.dat")
}

fn entry(i: usize, j: usize) -> CatalogEntry {
    CatalogEntry {
        name: fake_name(i, j),
        size: j as u64,
        hash: ContentHash::of(format!("{i}/{j}").as_bytes()),
    }
}

fn seal(key: &IndexKey, e: &CatalogEntry) -> BlindEntry {
    let record = Record {
        name: e.name.clone(),
        size: e.size,
        hash: e.hash,
    };
    BlindEntry {
        name_tag: key.name_tag(&e.name),
        content_tag: key.content_tag(&e.hash),
        record: key.seal(&record).expect("the bench's names fit a record"),
    }
}

fn registration() -> Registration {
    Registration {
        port: FAKE_PORT,
        advertised_ip: None,
        token: None,
    }
}

/// Registers `n` fake nodes with `files` files each at `relay`: plain, or
/// (with keys) as members of the private network, blind.
fn feed(
    relay: SocketAddr,
    n: usize,
    files: usize,
    private: Option<(&NetworkKeys, &IndexKey)>,
) -> Result<(), String> {
    let SocketAddr::V4(relay) = relay else {
        return Err("the relay must listen on IPv4 loopback".into());
    };
    let private = private.map(|(k, i)| (k.clone(), i.clone()));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let private = private.clone();
            thread::spawn(move || -> Result<(), String> {
                for i in (t..n).step_by(THREADS) {
                    fake_node(relay, i, files, private.as_ref())?;
                }
                Ok(())
            })
        })
        .collect();
    for w in workers {
        w.join().map_err(|_| "a fake node thread panicked")??;
    }
    Ok(())
}

/// Fake node `i`: registers, then sends its catalog in as many updates as
/// the request frame needs (built as a node builds them).
fn fake_node(
    relay: SocketAddrV4,
    i: usize,
    files: usize,
    private: Option<&(NetworkKeys, IndexKey)>,
) -> Result<(), String> {
    let src = fake_addr(i);
    let identity = Identity::generate().map_err(|e| e.to_string())?;
    let call =
        |request: &Request| call_from(src, relay, request, private.map(|p| (&p.0, &identity)));
    match call(&Request::Register(registration()))? {
        Response::Registered(_) => {}
        other => return Err(format!("fake node {src} not registered: {other:?}")),
    }
    // The node's own catalog code: the same batches and requests.
    let catalog = Catalog {
        files: (0..files)
            .map(|j| {
                let e = entry(i, j);
                (e.name, (e.size, Some(e.hash)))
            })
            .collect(),
        truncated: false,
    };
    let form = match private {
        None => CatalogForm::Plain,
        Some((_, key)) => CatalogForm::Blind(Box::new(key.clone())),
    };
    match CatalogSync::new(form).sync(&registration(), &catalog, |r| call(r)) {
        Synced::Done { refused: 0, .. } => Ok(()),
        other => Err(format!("fake node {src}: catalog {other:?}")),
    }
}

/// One exchange from `src`: in the clear, or under the relay key with
/// `identity` (the same each time, so the relay takes the node's catalog).
fn call_from(
    src: Ipv4Addr,
    relay: SocketAddrV4,
    request: &Request,
    private: Option<(&NetworkKeys, &Identity)>,
) -> Result<Response, String> {
    let stream = load::connect_from(src, relay).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    match private {
        None => {
            let mut stream = stream;
            frame::write(&mut stream, request).map_err(|e| e.to_string())?;
            let response = frame::read::<Response>(&mut stream).map_err(|e| e.to_string())?;
            let _ = stream.read(&mut [0u8; 64]);
            Ok(response)
        }
        Some((keys, identity)) => {
            let mut socket = Socket::new(stream);
            let session =
                handshake::initiate(&mut socket, KeyKind::Relay, &keys.relay, identity, None)
                    .map_err(|e| e.to_string())?;
            let mut secure = session.over(socket);
            frame::write(&mut secure, request).map_err(|e| e.to_string())?;
            let response = frame::read::<Response>(&mut secure).map_err(|e| e.to_string())?;
            let _ = secure.read(&mut [0u8; 64]);
            Ok(response)
        }
    }
}
