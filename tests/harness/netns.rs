//! A lab of separate hosts for end-to-end tests: Linux network namespaces,
//! each with its own 10.x address, joined by veth pairs on a bridge that
//! lives in a namespace of its own; routers that hide a host behind NAT
//! ([`Lab::nat`]); shaped uplinks ([`Lab::shape`]); threads and commands
//! inside a host ([`Lab::within`], [`Lab::exec`]). Nothing here touches the
//! root namespace's interfaces, and traffic only ever goes to addresses
//! inside the namespaces a test created. Every namespace is removed on drop,
//! also when the test panics.
//!
//! Namespaces need root. Where they cannot be created, [`Lab::or_skip`] says
//! why and the test skips, unless `P2P_REQUIRE_NETNS` is set (as `.ci/run`
//! does): then it fails, so CI always runs it.

use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::bin;

/// The `ip` tool of iproute2.
const IP: &str = "ip";
/// The `tc` tool of iproute2.
const TC: &str = "tc";

/// Runs `program ARGS`; the error is the tool's own message.
fn tool(program: &str, args: &[&str]) -> Result<(), String> {
    let out: Output = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `{program}`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `ip ARGS`.
pub fn ip(args: &[&str]) -> Result<(), String> {
    tool(IP, args)
}

/// Runs `ip ARGS` during setup, where a failure is a failure of the test.
fn ip_ok(args: &[&str]) {
    if let Err(why) = ip(args) {
        panic!("{why}");
    }
}

/// One host: a namespace, with an address on the bridge unless it sits
/// behind a router.
pub struct Host {
    pub ns: String,
    /// The bridge-side end of its veth pair (in the bridge namespace); None
    /// for a host behind a router.
    pub port: Option<String>,
    pub ip: String,
}

/// How a router's NAT behaves ([`Lab::nat_with`]); the default is
/// [`Lab::nat`]'s: Linux masquerade as it comes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NatKind {
    /// `masquerade fully-random`: each new connection leaves from a random
    /// port, as behind a symmetric NAT; nobody outside can predict it.
    pub random_ports: bool,
    /// Drop what arrives unasked (a WAN firewall, as on most home
    /// routers), where Linux without one answers a SYN with a reset.
    pub drop_unsolicited: bool,
    /// The router's uplink adds this one-way delay (a delay line, see
    /// [`crate::delay`]): routers milliseconds apart, as on the Internet.
    pub delay: Option<std::time::Duration>,
}

/// The namespaces one test created; removed on drop, also on a panic.
/// Deleting a namespace deletes the interfaces in it, so the veth pairs and
/// the bridge go with them. Declare it before the processes that run in it,
/// so that it is dropped after them.
pub struct Lab {
    /// Prefix of every namespace name: unique per process and lab.
    pub tag: String,
    bridge_ns: String,
    pub hosts: Vec<Host>,
    /// Delay lines, closed before the namespaces are deleted.
    wires: Vec<crate::delay::Wire>,
}

/// Labs created by this process, for unique names when tests run in
/// parallel.
static LABS: AtomicUsize = AtomicUsize::new(0);

impl Lab {
    /// Creates the bridge namespace (names start with a tag made of the
    /// process id, `name` and a counter), or says why it cannot.
    pub fn create(name: &str) -> Result<Lab, String> {
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let tag = format!("p2p{}{name}{n}", std::process::id());
        let bridge_ns = format!("{tag}-br");
        ip(&["netns", "add", &bridge_ns])?;
        let lab = Lab {
            tag,
            bridge_ns,
            hosts: Vec::new(),
            wires: Vec::new(),
        };
        let br = lab.bridge_ns.as_str();
        ip_ok(&["-n", br, "link", "set", "lo", "up"]);
        ip_ok(&["-n", br, "link", "add", "br0", "type", "bridge"]);
        ip_ok(&["-n", br, "link", "set", "br0", "up"]);
        Ok(lab)
    }

    /// The lab, or None when namespaces are unavailable and not required.
    pub fn or_skip(name: &str) -> Option<Lab> {
        match Lab::create(name) {
            Ok(lab) => Some(lab),
            Err(why) => skip_or_fail(&format!("cannot create a network namespace ({why})")),
        }
    }

    /// Like [`Lab::host`], its link to the bridge `delay` long each way:
    /// two TAP devices joined by a delay line in this process.
    pub fn far_host(&mut self, name: &str, ip: &str, delay: std::time::Duration) -> usize {
        let ns = self.new_ns(name);
        let port = format!("v{name}");
        assert!(port.len() <= 15, "interface name {port} too long");
        self.hosts.push(Host {
            ns: ns.clone(),
            port: Some(port.clone()),
            ip: ip.to_string(),
        });
        let inside = crate::delay::tap(&ns, "eth0")
            .unwrap_or_else(|e| panic!("cannot make a TAP device in {ns}: {e}"));
        let outside = crate::delay::tap(&self.bridge_ns, &port)
            .unwrap_or_else(|e| panic!("cannot make a TAP device on the bridge: {e}"));
        self.wires.push(
            crate::delay::join(inside, outside, delay)
                .unwrap_or_else(|e| panic!("cannot start a delay line: {e}")),
        );
        let br = self.bridge_ns.as_str();
        ip_ok(&["-n", br, "link", "set", &port, "master", "br0", "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        ip_ok(&["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
        self.hosts.len() - 1
    }

    /// Adds a host named `name` (a few letters: it names an interface)
    /// with address `ip`/24 on the bridge; returns its index.
    pub fn host(&mut self, name: &str, ip: &str) -> usize {
        let ns = self.new_ns(name);
        let port = format!("v{name}");
        assert!(port.len() <= 15, "interface name {port} too long");
        self.hosts.push(Host {
            ns: ns.clone(),
            port: Some(port.clone()),
            ip: ip.to_string(),
        });
        let br = self.bridge_ns.as_str();
        // The pair is made in the bridge namespace, its far end moved straight
        // into the host's: no interface ever exists in the root namespace.
        ip_ok(&[
            "-n", br, "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ]);
        ip_ok(&["-n", br, "link", "set", &port, "master", "br0", "up"]);
        ip_ok(&["-n", &ns, "link", "set", "lo", "up"]);
        ip_ok(&["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        ip_ok(&["-n", &ns, "link", "set", "eth0", "up"]);
        self.hosts.len() - 1
    }

    /// Adds a home router `router` on the bridge at `outside_ip`, and a host
    /// `inner` behind it at `inner_ip`/24 on a private link where the router
    /// is `router_ip`. The router forwards from the inside out and
    /// masquerades (nftables), as a home router does: no port forward, no
    /// route inward, and new connections from outside are dropped. Returns
    /// (router, inner), or why nftables cannot be used.
    pub fn nat(
        &mut self,
        router: &str,
        outside_ip: &str,
        router_ip: &str,
        inner: &str,
        inner_ip: &str,
    ) -> Result<(usize, usize), String> {
        self.nat_with(
            router,
            outside_ip,
            router_ip,
            inner,
            inner_ip,
            NatKind::default(),
        )
    }

    /// As [`Lab::nat`], with a NAT of the given kind.
    pub fn nat_with(
        &mut self,
        router: &str,
        outside_ip: &str,
        router_ip: &str,
        inner: &str,
        inner_ip: &str,
        kind: NatKind,
    ) -> Result<(usize, usize), String> {
        let r = match kind.delay {
            Some(delay) => self.far_host(router, outside_ip, delay),
            None => self.host(router, outside_ip),
        };
        let rns = self.hosts[r].ns.clone();
        let ins = self.new_ns(inner);
        self.hosts.push(Host {
            ns: ins.clone(),
            port: None,
            ip: inner_ip.to_string(),
        });
        let i = self.hosts.len() - 1;
        ip_ok(&[
            "-n", &rns, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0", "netns",
            &ins,
        ]);
        ip_ok(&[
            "-n",
            &rns,
            "addr",
            "add",
            &format!("{router_ip}/24"),
            "dev",
            "lan0",
        ]);
        ip_ok(&["-n", &rns, "link", "set", "lan0", "up"]);
        ip_ok(&["-n", &ins, "link", "set", "lo", "up"]);
        ip_ok(&[
            "-n",
            &ins,
            "addr",
            "add",
            &format!("{inner_ip}/24"),
            "dev",
            "eth0",
        ]);
        ip_ok(&["-n", &ins, "link", "set", "eth0", "up"]);
        ip_ok(&["-n", &ins, "route", "add", "default", "via", router_ip]);
        run_in(&rns, "sysctl", &["-qw", "net.ipv4.ip_forward=1"], None)?;
        let masquerade = if kind.random_ports {
            "masquerade fully-random"
        } else {
            "masquerade"
        };
        let input = if kind.drop_unsolicited {
            "    chain input {
        type filter hook input priority filter; policy accept;
        iifname \"eth0\" ct state established,related accept
        iifname \"eth0\" drop
    }
"
        } else {
            ""
        };
        let rules = format!(
            "\
table ip nat {{
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname \"eth0\" {masquerade}
    }}
}}
table ip filter {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
        iifname \"lan0\" oifname \"eth0\" accept
    }}
{input}}}
"
        );
        run_in(&rns, "nft", &["-f", "-"], Some(&rules))
            .map_err(|why| format!("{why} (install the nftables package)"))?;
        Ok((r, i))
    }

    /// The address of host `h`.
    pub fn ip_of(&self, h: usize) -> &str {
        &self.hosts[h].ip
    }

    /// A command that runs one of this workspace's binaries (`relay`,
    /// `peer-node`, `peer-client`) inside host `h`'s namespace. `ip netns
    /// exec` execs it, so the child's pid is the program's own (signals
    /// reach it).
    pub fn command(&self, h: usize, program: &str) -> Command {
        self.exec(h, &bin(program).to_string_lossy())
    }

    /// A command that runs any `program` (from PATH, or a path) inside host
    /// `h`'s namespace.
    pub fn exec(&self, h: usize, program: &str) -> Command {
        let mut cmd = Command::new(IP);
        cmd.args(["netns", "exec", &self.hosts[h].ns]).arg(program);
        cmd
    }

    /// Shapes host `h`'s uplink (what it sends) to `rate` (`100mbit`) with
    /// a token bucket, as a slower link would: `tc qdisc add dev eth0 root
    /// tbf rate RATE burst 256kb latency 100ms` in its namespace.
    pub fn shape(&self, h: usize, rate: &str) -> Result<(), String> {
        tool(
            TC,
            &[
                "-n",
                &self.hosts[h].ns,
                "qdisc",
                "add",
                "dev",
                "eth0",
                "root",
                "tbf",
                "rate",
                rate,
                "burst",
                "256kb",
                "latency",
                "100ms",
            ],
        )
    }

    /// Bytes host `h` has sent and received on its link (`eth0`), from the
    /// kernel's counters: what a program there carried, whatever it logs.
    pub fn traffic(&self, h: usize) -> u64 {
        let count = |which: &str| -> u64 {
            let out = Command::new(IP)
                .args(["netns", "exec", &self.hosts[h].ns, "cat"])
                .arg(format!("/sys/class/net/eth0/statistics/{which}"))
                .output()
                .unwrap_or_else(|e| panic!("cannot read {which} of {}: {e}", self.hosts[h].ns));
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("no {which} count for {}", self.hosts[h].ns))
        };
        count("rx_bytes") + count("tx_bytes")
    }

    /// A command run in the bridge's namespace (`tcpdump -i br0` sees every
    /// packet between the hosts on the bridge).
    pub fn on_bridge(&self, program: &str) -> Command {
        let mut cmd = Command::new(IP);
        cmd.args(["netns", "exec", &self.bridge_ns]).arg(program);
        cmd
    }

    /// Cuts host `h` off the bridge.
    pub fn cut(&self, h: usize) {
        let port = self.hosts[h]
            .port
            .as_deref()
            .expect("only a host on the bridge can be cut off it");
        ip_ok(&["-n", &self.bridge_ns, "link", "set", port, "down"]);
    }

    /// Runs `f` on a thread that has joined host `h`'s namespace: sockets
    /// it creates live there (a fake node in a test). Other threads keep
    /// their own namespace; sockets keep theirs whichever thread uses them.
    pub fn within<T: Send>(&self, h: usize, f: impl FnOnce() -> T + Send) -> T {
        let path = format!("/var/run/netns/{}", self.hosts[h].ns);
        std::thread::scope(|scope| {
            scope
                .spawn(|| {
                    let ns = std::fs::File::open(&path)
                        .unwrap_or_else(|e| panic!("cannot open {path}: {e}"));
                    // SAFETY: setns on a namespace file we opened changes only
                    // this thread's network namespace.
                    let rc = unsafe {
                        libc::setns(std::os::fd::AsRawFd::as_raw_fd(&ns), libc::CLONE_NEWNET)
                    };
                    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
                    f()
                })
                .join()
                .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }

    fn new_ns(&self, name: &str) -> String {
        let ns = format!("{}-{name}", self.tag);
        ip_ok(&["netns", "add", &ns]);
        ns
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        // A TAP device's open file would keep its namespace alive.
        self.wires.clear();
        for host in &self.hosts {
            if let Err(why) = ip(&["netns", "del", &host.ns]) {
                eprintln!("cleanup: {why}");
            }
        }
        if let Err(why) = ip(&["netns", "del", &self.bridge_ns]) {
            eprintln!("cleanup: {why}");
        }
    }
}

/// Runs `f` on a thread of its own inside a new network namespace that holds
/// only `lo`, brought up: what `unshare --net` and `ip link set lo up` give
/// a shell. Sockets the thread makes, threads it starts and processes it
/// spawns all live there, so nothing they send can leave the machine, and
/// the namespace goes with the last of them (nothing to remove). Err when
/// it cannot be made (not root, no iproute2).
pub fn loopback_only<T: Send>(f: impl FnOnce() -> T + Send) -> Result<T, String> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: unshare(CLONE_NEWNET) moves only this thread into
                // a new network namespace; no memory is involved.
                if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                    return Err(format!(
                        "unshare(CLONE_NEWNET): {}",
                        std::io::Error::last_os_error()
                    ));
                }
                ip(&["link", "set", "lo", "up"])?;
                Ok(f())
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// None (the test skips, saying why) unless `P2P_REQUIRE_NETNS` is set:
/// then the test fails.
pub fn skip_or_fail<T>(why: &str) -> Option<T> {
    if std::env::var_os("P2P_REQUIRE_NETNS").is_some() {
        panic!("network namespaces are required (P2P_REQUIRE_NETNS is set): {why}");
    }
    eprintln!(
        "skipping: {why}; run as root with iproute2 and nftables, or set \
         P2P_REQUIRE_NETNS to make this a failure"
    );
    None
}

/// Runs `program ARGS` inside namespace `ns`, with `stdin` as its input.
fn run_in(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut cmd = Command::new(IP);
    cmd.args(["netns", "exec", ns, program])
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot run `{program}` in {ns}: {e}"))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot feed `{program}`: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("`{program}` in {ns}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`{program} {}` in {ns} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}
