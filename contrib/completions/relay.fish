complete -c relay -l bind -d 'Address to listen on (default: all interfaces, IPv6 and IPv4)' -r
complete -c relay -l ttl -d 'Seconds after which a node that has not refreshed is dropped (at least 1; nodes refresh at least three times per TTL)' -r
complete -c relay -l max-nodes-per-ip -d 'Nodes one IP address may register (at least 1). Past it that address gets `busy`; a full table still takes a node from an address that holds fewer (docs/SECURITY.md)' -r
complete -c relay -l token -d 'Secret that nodes must present to register (crosses the network in clear)' -r
complete -c relay -l max-node-files -d 'Most files the index holds for one node; a node with more is still listed, and its other files are found by asking nodes in turn' -r
complete -c relay -l max-index-entries -d 'Most files the index holds in all (about 140 bytes of memory each; in a private network, whose index is blind, about 240)' -r
complete -c relay -l max-circuits -d 'Relayed circuits open at once, in all' -r
complete -c relay -l max-circuits-per-node -d 'Relayed circuits open at once to one node' -r
complete -c relay -l max-circuits-per-client -d 'Relayed circuits open at once from one client IP address' -r
complete -c relay -l circuit-max-bytes -d 'Close a circuit after this many bytes (default: no cap)' -r
complete -c relay -l circuit-max-secs -d 'Close a circuit after this many seconds (default: no cap)' -r
complete -c relay -l secret -d 'Private network: encrypt and authenticate every connection with this secret (visible in `ps`: prefer --secret-file or P2P_SECRET) [env: P2P_SECRET]' -r
complete -c relay -l secret-file -d 'Read the secret from PATH (all of it, less one trailing newline). Without it, a systemd credential named `secret` is read if the service has one ($CREDENTIALS_DIRECTORY/secret)' -r -F
complete -c relay -l relay-key -d 'Private network with only the relay key (64 hex digits, from `peer-client --show-relay-key`): for a relay that must carry a network without being able to read it (docs/SECURITY.md)' -r
complete -c relay -l relay-key-file -d 'Like --relay-key, read from PATH. Without it (and without a secret), a systemd credential named `relay-key` is read if the service has one' -r -F
complete -c relay -l dht-bootstrap -d 'A DHT node to bootstrap from instead of the public routers (repeatable; turns --dht on)' -r
complete -c relay -l dht-port -d 'UDP port of the DHT node (0 takes a free port)' -r
complete -c relay -l metrics -d 'Serve metrics for Prometheus (`/metrics`) and a status page (`/status`) over HTTP at ADDR:PORT, such as 127.0.0.1:9100 (port 0 takes a free port). Off by default' -r
complete -c relay -l max-connections -d 'Connections served at once; past it a new one gets a `busy` answer' -r
complete -c relay -l max-per-ip -d 'Connections served at once from one source IP address' -r
complete -c relay -l request-timeout -d 'Seconds a new connection has to deliver its whole request' -r
complete -c relay -l io-timeout -d 'Seconds any later read or write may wait for the peer' -r
complete -c relay -l trust-advertised -d 'List nodes under the host they advertise even when it differs from the address the relay sees (only behind port forwarding you control)'
complete -c relay -l no-punch -d 'Never help a client and a relayed node connect directly (hole punching): carry all their bytes through circuits'
complete -c relay -l no-relaying -d 'Neither check registrations by dialling them back nor relay for nodes that cannot be reached: every registration is listed as it comes (docs/SECURITY.md)'
complete -c relay -l dht -d 'Announce this relay on the BitTorrent Mainline DHT under an id only members of its private network can derive, so a client whose relays are all down finds it (needs --secret or --relay-key). Starts from the public routers unless --dht-bootstrap is given'
complete -c relay -s v -l verbose -d 'More detail in the log (-v debug, -vv trace); RUST_LOG overrides'
complete -c relay -s q -l quiet -d 'Only errors in the log'
complete -c relay -s h -l help -d 'Print help'
complete -c relay -s V -l version -d 'Print version'
