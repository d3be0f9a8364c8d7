#!/usr/bin/python3
"""A real BitTorrent DHT client for tests/dht_libtorrent.rs: a libtorrent
2.0 session (Debian's python3-libtorrent) on 127.0.0.1, bootstrapped only
from the nodes given, driven one command per line on stdin, answering one
JSON object per line on stdout.

    dht_libtorrent.py 127.0.0.1:PORT[,127.0.0.1:PORT...]

Output at start, once the session's DHT routing table holds a node:
    {"ready": true, "port": PORT, "nodes": N}
Commands:
    get_peers HEX40   -> {"peers": ["IP:PORT", ...]}   (one dht_get_peers)
    announce HEX40    -> {"announcing": HEX40, "port": PORT}
                         (an info-hash-only magnet: libtorrent announces it
                         on the DHT with its listen port)
    quit
Errors go to stderr, with exit status 1.

The settings make libtorrent usable on loopback: it bans, filters or
distrusts 127.0.0.1 nodes by default.
"""

import json
import sys
import tempfile
import time

import libtorrent as lt

# How long one command may wait for libtorrent.
WAIT = 20.0


def say(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def session(bootstrap):
    return lt.session({
        "listen_interfaces": "127.0.0.1:0",
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_dht": True,
        "dht_bootstrap_nodes": bootstrap,
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_prefer_verified_node_ids": False,
        "dht_enforce_node_id": False,
        "dht_ignore_dark_internet": False,
        # Every node here is 127.0.0.1: without this, libtorrent blocks it
        # as a flood after a few queries.
        "dht_block_ratelimit": 1000000,
        "alert_mask": lt.alert.category_t.all_categories,
    })


def alerts(ses, deadline):
    """Yields alerts until the deadline."""
    while time.monotonic() < deadline:
        ses.wait_for_alert(100)
        for alert in ses.pop_alerts():
            yield alert


def routing_nodes(ses):
    ses.post_dht_stats()
    for alert in alerts(ses, time.monotonic() + 2.0):
        if isinstance(alert, lt.dht_stats_alert):
            return sum(bucket["num_nodes"] for bucket in alert.routing_table)
    return 0


def wait_ready(ses):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        nodes = routing_nodes(ses)
        if nodes > 0:
            return nodes
        time.sleep(0.1)
    sys.exit("libtorrent's DHT found no node within %.0f s" % WAIT)


def get_peers(ses, hex_id):
    target = lt.sha1_hash(bytes.fromhex(hex_id))
    ses.dht_get_peers(target)
    for alert in alerts(ses, time.monotonic() + WAIT):
        if isinstance(alert, lt.dht_get_peers_reply_alert) and str(alert.info_hash) == hex_id:
            return ["%s:%d" % peer for peer in alert.peers()]
    sys.exit("no dht_get_peers reply for %s within %.0f s" % (hex_id, WAIT))


def announce(ses, hex_id, save_path):
    params = lt.parse_magnet_uri("magnet:?xt=urn:btih:" + hex_id)
    params.save_path = save_path
    ses.add_torrent(params)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    ses = session(sys.argv[1])
    nodes = wait_ready(ses)
    port = ses.listen_port()
    say({"ready": True, "port": port, "nodes": nodes})
    with tempfile.TemporaryDirectory() as save_path:
        for line in sys.stdin:
            words = line.split()
            if not words:
                continue
            if words[0] == "get_peers" and len(words) == 2:
                say({"peers": get_peers(ses, words[1].lower())})
            elif words[0] == "announce" and len(words) == 2:
                announce(ses, words[1].lower(), save_path)
                say({"announcing": words[1].lower(), "port": port})
            elif words[0] == "quit":
                break
            else:
                sys.exit("unknown command: %r" % line)


if __name__ == "__main__":
    main()
