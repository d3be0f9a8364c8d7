//! Separate hosts for the sections that need them (`multi`, `punch`):
//! network namespaces on a bridge, as tests/harness/netns.rs makes them,
//! and home routers that hide a host behind NAT (nftables). Needs root;
//! every namespace is removed on drop.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `program ARGS`; the error carries the tool's own message.
pub fn tool(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{program} {}` failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}

/// `ip netns exec NS PROGRAM`.
pub fn in_ns(ns: &str, program: &Path) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns]).arg(program);
    cmd
}

/// How a router's NAT behaves.
#[derive(Debug, Clone, Copy)]
pub struct Nat {
    /// `masquerade fully-random`: a symmetric NAT.
    pub random_ports: bool,
    /// Drop what comes unasked (a WAN firewall) instead of answering a SYN
    /// with a reset, as Linux does without one.
    pub drop_unsolicited: bool,
    /// A port forwarded to the same port of the inner host.
    pub forward: Option<u16>,
    /// The router's uplink adds this one-way delay: a delay line in this
    /// process (the tests' `harness::delay`), where the kernel has no netem.
    pub delay: Option<std::time::Duration>,
}

/// Namespaces on a bridge, removed on drop.
pub struct Lab {
    tag: String,
    bridge: String,
    hosts: Vec<String>,
    /// Delay lines, closed before the namespaces are deleted (a TAP
    /// device's open file keeps its namespace alive).
    wires: Vec<harness::delay::Wire>,
}

impl Lab {
    /// A bridge namespace named after `section` and this process.
    pub fn create(section: &str) -> Result<Lab, String> {
        let tag = format!("p2pb{}{section}", std::process::id());
        let bridge = format!("{tag}-br");
        tool("ip", &["netns", "add", &bridge]).map_err(|e| {
            format!("{e} (the {section} section needs root for network namespaces)")
        })?;
        let lab = Lab {
            tag,
            bridge,
            hosts: Vec::new(),
            wires: Vec::new(),
        };
        tool(
            "ip",
            &["-n", &lab.bridge, "link", "add", "br0", "type", "bridge"],
        )?;
        tool("ip", &["-n", &lab.bridge, "link", "set", "br0", "up"])?;
        Ok(lab)
    }

    /// A host `name` at `ip`/24 on the bridge; its namespace name.
    pub fn host(&mut self, name: &str, ip: &str) -> Result<String, String> {
        self.host_delayed(name, ip, None)
    }

    /// Like [`Lab::host`]; with a delay, its link is two TAP devices joined
    /// by a delay line instead of a veth pair.
    fn host_delayed(
        &mut self,
        name: &str,
        ip: &str,
        delay: Option<std::time::Duration>,
    ) -> Result<String, String> {
        let ns = self.namespace(name)?;
        let port = format!("v{name}");
        let br = self.bridge.as_str();
        match delay {
            None => tool(
                "ip",
                &[
                    "-n", br, "link", "add", &port, "type", "veth", "peer", "name", "eth0",
                    "netns", &ns,
                ],
            )?,
            Some(delay) => {
                let tap = |ns: &str, dev: &str| {
                    harness::delay::tap(ns, dev)
                        .map_err(|e| format!("cannot make TAP device {dev} in {ns}: {e}"))
                };
                let wire = harness::delay::join(tap(&ns, "eth0")?, tap(br, &port)?, delay)
                    .map_err(|e| format!("cannot start a delay line: {e}"))?;
                self.wires.push(wire);
            }
        }
        let br = self.bridge.as_str();
        tool(
            "ip",
            &["-n", br, "link", "set", &port, "master", "br0", "up"],
        )?;
        tool(
            "ip",
            &["-n", &ns, "addr", "add", &format!("{ip}/24"), "dev", "eth0"],
        )?;
        tool("ip", &["-n", &ns, "link", "set", "eth0", "up"])?;
        Ok(ns)
    }

    /// A router `name` on the bridge at `outside`, and a host `name`-in
    /// behind it at `inner` on the router's LAN (`lan`.1/24); returns the
    /// inner host's namespace. The router masquerades as `nat` says and
    /// forwards nothing inward unasked (but `nat.forward`).
    pub fn nat(
        &mut self,
        name: &str,
        outside: &str,
        lan: &str,
        inner: &str,
        nat: Nat,
    ) -> Result<String, String> {
        let router = self.host_delayed(name, outside, nat.delay)?;
        let ins = self.namespace(&format!("{name}in"))?;
        tool(
            "ip",
            &[
                "-n", &router, "link", "add", "lan0", "type", "veth", "peer", "name", "eth0",
                "netns", &ins,
            ],
        )?;
        tool(
            "ip",
            &[
                "-n",
                &router,
                "addr",
                "add",
                &format!("{lan}.1/24"),
                "dev",
                "lan0",
            ],
        )?;
        tool("ip", &["-n", &router, "link", "set", "lan0", "up"])?;
        tool(
            "ip",
            &[
                "-n",
                &ins,
                "addr",
                "add",
                &format!("{inner}/24"),
                "dev",
                "eth0",
            ],
        )?;
        tool("ip", &["-n", &ins, "link", "set", "eth0", "up"])?;
        tool(
            "ip",
            &[
                "-n",
                &ins,
                "route",
                "add",
                "default",
                "via",
                &format!("{lan}.1"),
            ],
        )?;
        run_in(&router, "sysctl", &["-qw", "net.ipv4.ip_forward=1"], None)?;
        let masquerade = if nat.random_ports {
            "masquerade fully-random"
        } else {
            "masquerade"
        };
        let (prerouting, forwarded) = match nat.forward {
            Some(port) => (
                format!(
                    "    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        iifname \"eth0\" tcp dport {port} dnat to {inner}:{port}
    }}
"
                ),
                "        ct status dnat accept\n",
            ),
            None => (String::new(), ""),
        };
        let input = if nat.drop_unsolicited {
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
            "table ip nat {{
{prerouting}    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname \"eth0\" {masquerade}
    }}
}}
table ip filter {{
    chain forward {{
        type filter hook forward priority filter; policy drop;
        ct state established,related accept
{forwarded}        iifname \"lan0\" oifname \"eth0\" accept
    }}
{input}}}
"
        );
        run_in(&router, "nft", &["-f", "-"], Some(&rules))
            .map_err(|e| format!("{e} (install the nftables package)"))?;
        Ok(ins)
    }

    fn namespace(&mut self, name: &str) -> Result<String, String> {
        let ns = format!("{}-{name}", self.tag);
        tool("ip", &["netns", "add", &ns])?;
        self.hosts.push(ns.clone());
        tool("ip", &["-n", &ns, "link", "set", "lo", "up"])?;
        Ok(ns)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.wires.clear();
        for ns in &self.hosts {
            let _ = tool("ip", &["netns", "del", ns]);
        }
        let _ = tool("ip", &["netns", "del", &self.bridge]);
    }
}

/// Runs `program ARGS` in namespace `ns`, with `stdin` as its input.
fn run_in(ns: &str, program: &str, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, program])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program} in {ns}: {e}"))?;
    if let (Some(text), Some(mut input)) = (stdin, child.stdin.take()) {
        input
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot feed {program}: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("{program} in {ns}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "`{program} {}` in {ns} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    ))
}
