complete -c peer-client -s o -l output -d 'Save the file to PATH instead of printing it (several NAMEs: into the directory PATH)' -r -F
complete -c peer-client -l search -d 'Print the files whose names contain TEXT (either case) across the network: size, short hash, number of holders, name. Then exit' -r
complete -c peer-client -l connect-timeout -d 'Seconds to wait for a relay or node to accept a connection' -r
complete -c peer-client -l timeout -d 'Seconds any read or write may wait for a relay or node' -r
complete -c peer-client -l sources -d 'Holders to download from at once: each file is fetched in verified ranges from up to N nodes that hold it. 1 asks one node at a time, in the relay\'s order' -r
complete -c peer-client -l relay -d 'Another relay of the network, asked when the ones before it cannot be reached (repeatable; asked in order after the positional one)' -r
complete -c peer-client -l dht-bootstrap -d 'A DHT node to start from instead of the public routers (repeatable; turns --dht on)' -r
complete -c peer-client -l secret -d 'Private network: encrypt and authenticate every connection with this secret (visible in `ps`: prefer --secret-file or P2P_SECRET) [env: P2P_SECRET]' -r
complete -c peer-client -l secret-file -d 'Read the secret from PATH (all of it, less one trailing newline). Without it, a systemd credential named `secret` is read if the service has one ($CREDENTIALS_DIRECTORY/secret)' -r -F
complete -c peer-client -l node -d 'Fetch (and list) only from the node holding this static key (64 hex digits, as `peer-node` prints it and `--peers` shows it). Needs a secret' -r
complete -c peer-client -l peers -d 'Print the active nodes, one per line, then exit'
complete -c peer-client -l list -d 'Print what the network shares (from the relay\'s index), then exit'
complete -c peer-client -s l -l long -d 'With --list: show each file\'s whole content hash'
complete -c peer-client -l nodes -d 'With --list: ask each active node for its own listing instead'
complete -c peer-client -l json -d 'With --peers, --list or --search: print one JSON document on stdout instead of columns, with exact sizes in bytes and whole hashes (field names: README, "Output for scripts")'
complete -c peer-client -l no-index -d 'Do not use the relay\'s index: ask every active node in turn'
complete -c peer-client -l no-punch -d 'Reach relayed nodes only through the relay\'s circuits: no hole punching (by default the relay first helps the client and the node connect directly)'
complete -c peer-client -l no-resume -d 'Start a save from scratch: remove the part an earlier run kept'
complete -c peer-client -l dht -d 'Look for holders of blake3: hashes on the BitTorrent Mainline DHT too, beside the relays. Without it the DHT is asked only when no relay can be reached. In a private network, when no relay can be reached, also look for its other relays there (`relay --dht`)'
complete -c peer-client -l no-dht -d 'Never use the DHT, not even when no relay can be reached'
complete -c peer-client -l show-relay-key -d 'Print the relay key derived from the secret, for `relay --relay-key` on a relay someone else runs (it cannot read the network), then exit'
complete -c peer-client -s v -l verbose -d 'More detail in the log (-v debug, -vv trace); RUST_LOG overrides'
complete -c peer-client -s q -l quiet -d 'Only errors in the log'
complete -c peer-client -s h -l help -d 'Print help (see more with \'--help\')'
complete -c peer-client -s V -l version -d 'Print version'
