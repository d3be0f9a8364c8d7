complete -c peer-node -l exclude -d 'Keep out of the share (not listed, not indexed, not served) every file or directory matching GLOB: `.git` or `*.tmp` at any depth, a pattern with `/` from DIR (`build/*.o`); repeatable' -r
complete -c peer-node -l cache -d 'Directory for the hash trees (outboards, 0.1% of each file\'s size) of shared files; must be outside DIR. Default: $XDG_CACHE_HOME/p2p-share or $HOME/.cache/p2p-share' -r -F
complete -c peer-node -l port -d 'Port to serve on (0 takes a free port)' -r
complete -c peer-node -l bind -d 'Address to serve on (default: all interfaces, IPv6 and IPv4)' -r
complete -c peer-node -l advertise -d 'Announce HOST:PORT instead (port forwarding, multi-homed hosts). The relay honours the host only if it runs with --trust-advertised' -r
complete -c peer-node -l heartbeat -d 'Seconds between refreshes of the registration (shortened to a third of the relay\'s TTL when that is shorter)' -r
complete -c peer-node -l token -d 'Secret the relay requires to register (crosses the network in clear)' -r
complete -c peer-node -l connect-timeout -d 'Seconds to wait for the relay to accept a connection' -r
complete -c peer-node -l dht-bootstrap -d 'A DHT node to bootstrap from instead of the public routers (repeatable; turns --dht on)' -r
complete -c peer-node -l dht-port -d 'UDP port of the DHT node (0 takes a free port)' -r
complete -c peer-node -l secret -d 'Private network: encrypt and authenticate every connection with this secret (visible in `ps`: prefer --secret-file or P2P_SECRET) [env: P2P_SECRET]' -r
complete -c peer-node -l secret-file -d 'Read the secret from PATH (all of it, less one trailing newline). Without it, a systemd credential named `secret` is read if the service has one ($CREDENTIALS_DIRECTORY/secret)' -r -F
complete -c peer-node -l key -d 'The node\'s key file, made (mode 0600) on first use. Default: one per shared directory, $XDG_CONFIG_HOME/p2p-share/nodes/NAME-HASH.key (else under ~/.config), named after DIR\'s canonical path. Only used with a secret' -r -F
complete -c peer-node -l metrics -d 'Serve metrics for Prometheus (`/metrics`) and a status page (`/status`) over HTTP at ADDR:PORT, such as 127.0.0.1:9101 (port 0 takes a free port). Off by default' -r
complete -c peer-node -l relay -d 'Another relay of the network to register with too (repeatable), as a torrent lists several trackers: each one lists this node and gets its catalog, so clients can ask any of them' -r
complete -c peer-node -l max-connections -d 'Connections served at once; past it a new one gets a `busy` answer' -r
complete -c peer-node -l max-per-ip -d 'Connections served at once from one source IP address' -r
complete -c peer-node -l request-timeout -d 'Seconds a new connection has to deliver its whole request' -r
complete -c peer-node -l io-timeout -d 'Seconds any later read or write may wait for the peer' -r
complete -c peer-node -l relayed -d 'Be relayed even if the relay could connect to this node: keep a control connection to the relay and serve clients through it (for tests and benchmarks; a node behind NAT switches by itself)'
complete -c peer-node -l dht -d 'Announce every shared file on the BitTorrent Mainline DHT, so clients find this node without a relay (off by default: it tells the public DHT what this node shares). Starts from the public routers unless --dht-bootstrap is given'
complete -c peer-node -l dht-server -d 'Answer other DHT nodes\' queries from the start, so they can bootstrap from this node (a DHT of your own, on a LAN without the public routers: give each such node the others with --dht-bootstrap and a fixed --dht-port). Without it a node serves the DHT only once it has run 15 minutes and found itself reachable. Turns --dht on'
complete -c peer-node -s v -l verbose -d 'More detail in the log (-v debug, -vv trace); RUST_LOG overrides'
complete -c peer-node -s q -l quiet -d 'Only errors in the log'
complete -c peer-node -s h -l help -d 'Print help'
complete -c peer-node -s V -l version -d 'Print version'
