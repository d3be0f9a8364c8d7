//! The second transfer baseline: nginx serving the same file with sendfile
//! and tcp_nopush, fetched by `curl -s -o /dev/null`, the pair a user would
//! compare us with. Used when both programs are installed
//! (`apt-get install nginx-light curl`); skipped with a note otherwise.
//!
//! nginx runs from a config of its own in a temp dir (port, pid file, logs
//! and temp paths all there), in the foreground and without a master
//! process, so it is one process like peer-node, and killing that process on
//! drop ends it (a master killed with SIGKILL would leave its worker behind).

use std::fmt::Write as _;
use std::fs;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

use crate::procs::{self, ClientRun, Proc};

/// Where nginx usually is: /usr/sbin is not on every user's PATH.
const SBIN_DIRS: [&str; 3] = ["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"];

/// How long nginx may take to accept connections.
const READY: Duration = Duration::from_secs(10);

/// nginx serving one directory on a loopback port, and the curl to fetch with.
pub struct Nginx {
    _proc: Proc,
    addr: SocketAddr,
    /// HTTPS (a self-signed certificate; curl -k), else HTTP.
    tls: bool,
    nginx: PathBuf,
    curl: PathBuf,
}

impl Nginx {
    /// Why this baseline cannot run here, if it cannot: nginx or curl missing.
    pub fn missing() -> Option<String> {
        let missing: Vec<&str> = ["nginx", "curl"]
            .into_iter()
            .filter(|name| find(name).is_none())
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "{} not installed (apt-get install nginx-light curl)",
                missing.join(" and ")
            )
        })
    }

    /// Starts nginx serving `root`, with its config, logs and temp files in `dir`.
    pub fn start(root: &Path, dir: &Path) -> Result<Nginx, String> {
        Nginx::start_with(root, dir, false)
    }

    /// The same over HTTPS: TLS 1.3 with a self-signed P-256 certificate
    /// made here by `openssl` (`apt-get install openssl`).
    pub fn start_tls(root: &Path, dir: &Path) -> Result<Nginx, String> {
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", "/CN=localhost", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .map_err(|e| format!("cannot run openssl ({e}): apt-get install openssl"))?;
        if !out.status.success() {
            return Err(format!(
                "openssl could not make a certificate: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Nginx::start_with(root, dir, true)
    }

    fn start_with(root: &Path, dir: &Path, tls: bool) -> Result<Nginx, String> {
        let not_found = |name: &str| format!("{name} not found");
        let nginx = find("nginx").ok_or_else(|| not_found("nginx"))?;
        let curl = find("curl").ok_or_else(|| not_found("curl"))?;
        let addr = free_port()?;
        let mut proc = launch(Command::new(&nginx), root, dir, addr, tls)?;
        wait_until_accepting(&mut proc, addr)?;
        Ok(Nginx {
            _proc: proc,
            addr,
            tls,
            nginx,
            curl,
        })
    }

    pub fn versions(&self) -> String {
        let first_line = |program: &Path, arg: &str| -> String {
            Command::new(program)
                .arg(arg)
                .output()
                .map(|o| {
                    // nginx -v prints on stderr, curl --version on stdout.
                    let text = [o.stdout, o.stderr].concat();
                    String::from_utf8_lossy(&text)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default()
        };
        let nginx = first_line(&self.nginx, "-v");
        let nginx = nginx.rsplit(' ').next().unwrap_or("nginx");
        let curl = first_line(&self.curl, "--version");
        let curl = curl.split(' ').take(2).collect::<Vec<_>>().join(" ");
        format!("{nginx}, {curl}")
    }

    /// One `curl -s -o /dev/null` of `name`, timed from start to exit as
    /// peer-client is. `--fail` makes an HTTP error an error here; a body
    /// shorter than its Content-Length already is one for curl.
    pub fn fetch(&self, name: &str, log: &Path) -> Result<ClientRun, String> {
        let scheme = if self.tls { "https" } else { "http" };
        let url = format!("{scheme}://{}/{name}", self.addr);
        // -k: the certificate is the self-signed one made for this run.
        let args = ["-s", "--fail", "-k", "-o", "/dev/null", &url];
        procs::run_to_exit(&self.curl, &args, log)
    }
}

/// Starts nginx in network namespace `ns`, serving `root` at `addr`, its
/// files in `dir`. Not waited for: the caller knows from where to ask.
pub fn spawn_in(
    ns: &str,
    nginx: &Path,
    root: &Path,
    dir: &Path,
    addr: SocketAddr,
) -> Result<Proc, String> {
    launch(crate::lab::in_ns(ns, nginx), root, dir, addr, false)
}

/// Writes the config for `root` at `addr` into `dir` and runs `cmd` (nginx,
/// or nginx in a namespace) on it.
fn launch(
    mut cmd: Command,
    root: &Path,
    dir: &Path,
    addr: SocketAddr,
    tls: bool,
) -> Result<Proc, String> {
    fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let conf = dir.join("nginx.conf");
    fs::write(&conf, config(root, dir, addr, tls))
        .map_err(|e| format!("cannot write {}: {e}", conf.display()))?;
    // -e: the error log before the config is read (nginx >= 1.19.5);
    // otherwise a non-root nginx complains about /var/log/nginx first.
    cmd.arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&conf)
        .arg("-e")
        .arg(dir.join("error.log"));
    Proc::spawn("nginx", cmd, dir.join("stderr.log"))
}

/// The whole config: what the measurement used (sendfile on,
/// tcp_nopush on), one worker, every path inside `dir`. Also the config of
/// the nginx servers of sections 9 (`swarm`) and `hosts`, one per
/// namespace. With `tls`, HTTPS only (TLS 1.3, the certificate and key in
/// `dir`, see [`Nginx::start_tls`]); nginx's defaults otherwise, so no
/// kernel TLS: nginx reads and encrypts each buffer itself, as our node does.
pub fn config(root: &Path, dir: &Path, addr: SocketAddr, tls: bool) -> String {
    let d = dir.display();
    let mut c = String::new();
    let _ = writeln!(c, "daemon off;");
    let _ = writeln!(c, "master_process off;");
    let _ = writeln!(c, "worker_processes 1;");
    let _ = writeln!(c, "pid {d}/nginx.pid;");
    let _ = writeln!(c, "error_log {d}/error.log;");
    let _ = writeln!(c, "events {{ worker_connections 64; }}");
    let _ = writeln!(c, "http {{");
    let _ = writeln!(c, "    access_log {d}/access.log;");
    for temp in ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"] {
        let _ = writeln!(c, "    {temp}_temp_path {d}/{temp}_temp;");
    }
    let _ = writeln!(c, "    default_type application/octet-stream;");
    let _ = writeln!(c, "    sendfile on;");
    let _ = writeln!(c, "    tcp_nopush on;");
    let _ = writeln!(c, "    server {{");
    if tls {
        let _ = writeln!(c, "        listen {addr} ssl;");
        let _ = writeln!(c, "        ssl_certificate {d}/cert.pem;");
        let _ = writeln!(c, "        ssl_certificate_key {d}/key.pem;");
        let _ = writeln!(c, "        ssl_protocols TLSv1.3;");
    } else {
        let _ = writeln!(c, "        listen {addr};");
    }
    let _ = writeln!(c, "        root {};", root.display());
    let _ = writeln!(c, "    }}");
    let _ = writeln!(c, "}}");
    c
}

/// `name` on PATH or in the usual sbin directories.
pub fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(SBIN_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A loopback port free a moment ago (nginx binds it itself).
fn free_port() -> Result<SocketAddr, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("cannot find a free port: {e}"))?;
    listener
        .local_addr()
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// Waits until `addr` accepts a connection, failing early if nginx exits.
fn wait_until_accepting(proc: &mut Proc, addr: SocketAddr) -> Result<(), String> {
    let deadline = Instant::now() + READY;
    loop {
        if TcpStream::connect(addr).is_ok() {
            return Ok(());
        }
        proc.check_running()?;
        if Instant::now() >= deadline {
            return Err(format!("nginx did not accept on {addr} within {READY:?}"));
        }
        thread::sleep(Duration::from_millis(5));
    }
}
