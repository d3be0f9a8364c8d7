#!/usr/bin/env bash
# The whole system on one machine: builds the programs, starts a relay and
# three peer nodes over sample_files/node1..3 on free loopback ports, then
# runs peer-client against them in this terminal. Everything it started is
# stopped, and its logs removed, when the client exits (quit, Ctrl-D, Ctrl-C,
# or an error).
#
#   ./demo.sh                   the interactive prompt
#   echo hello.txt | ./demo.sh  prints hello.txt (stdout carries the file only)
#   ./demo.sh --peers           any other arguments go to peer-client
#
# Banner, progress and errors go to stderr; stdout is peer-client's alone.
set -uo pipefail

# Paths are absolute so that `-o FILE` and `get NAME -o FILE` save where you are.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd) || exit 2

case "${1-}" in
-h | --help)
  sed -n '2,12s/^# \{0,1\}//p' "$0"
  exit 0
  ;;
esac

say() { printf 'demo: %s\n' "$*" >&2; }

logs=$(mktemp -d "${TMPDIR:-/tmp}/p2p-demo.XXXXXX") || exit 2
client=
nodes=()
relay=
helpers=() # the build and its log follower, while they run
cleaned=
# The client's line editor puts the terminal in raw mode; if the client is
# killed mid-line, put the terminal back as it was.
tty_state=
[ -t 0 ] && tty_state=$(stty -g 2>/dev/null)

cleanup() {
  [ -n "$cleaned" ] && return
  cleaned=1
  if [ "${#helpers[@]}" -gt 0 ]; then
    kill -TERM "${helpers[@]}" 2>/dev/null
    wait "${helpers[@]}" 2>/dev/null
  fi
  if [ -n "$client" ]; then
    kill -TERM "$client" 2>/dev/null
    wait "$client" 2>/dev/null
    [ -n "$tty_state" ] && stty "$tty_state" 2>/dev/null
  fi
  # Nodes first: on SIGTERM each one unregisters from the still-running relay.
  if [ "${#nodes[@]}" -gt 0 ]; then
    kill -TERM "${nodes[@]}" 2>/dev/null
    wait "${nodes[@]}" 2>/dev/null
  fi
  if [ -n "$relay" ]; then
    kill -TERM "$relay" 2>/dev/null
    wait "$relay" 2>/dev/null
  fi
  rm -rf "$logs"
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap 'cleanup; exit 129' HUP

# Prints a log and gives up; used when a program fails to start.
fail() {
  say "$1"
  [ -n "${2-}" ] && [ -f "$2" ] && sed 's/^/  | /' "$2" >&2
  exit 2
}

# Waits until file $1 has a line matching $2; fails if process $3 exits first.
wait_for_line() {
  local file=$1 pattern=$2 pid=$3 what=$4
  local tries=0
  until grep -q -- "$pattern" "$file" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
      fail "$what exited before it was ready; its log:" "$file"
    fi
    tries=$((tries + 1))
    # 20 s at 50 ms a poll.
    [ "$tries" -gt 400 ] && fail "$what was not ready after 20 s; its log:" "$file"
    sleep 0.05
  done
}

# --- build: silent when already built, cargo's progress when it takes a while
command -v cargo >/dev/null 2>&1 || fail "cargo is not installed (https://rustup.rs)"
cargo build --manifest-path "$root/Cargo.toml" -p relay -p peer-node -p peer-client >"$logs/build.log" 2>&1 &
build=$!
helpers=("$build")
for _ in $(seq 30); do
  kill -0 "$build" 2>/dev/null || break
  sleep 0.1
done
if kill -0 "$build" 2>/dev/null; then
  say "building relay, peer-node and peer-client (the first time takes a minute or two)..."
  tail -n +1 -f --pid="$build" "$logs/build.log" >&2 &
  helpers+=($!)
fi
wait "$build"
status=$?
[ "${#helpers[@]}" -gt 1 ] && wait "${helpers[1]}"
helpers=()
[ "$status" -eq 0 ] || fail "cargo build failed:" "$logs/build.log"
bin="${CARGO_TARGET_DIR:-$root/target}/debug"

# --- relay on a free loopback port
"$bin/relay" 0 --bind 127.0.0.1 2>"$logs/relay.log" &
relay=$!
wait_for_line "$logs/relay.log" "listening on" "$relay" relay
port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$logs/relay.log" | head -n 1)
[ -n "$port" ] || fail "cannot read the relay's port from its log:" "$logs/relay.log"

# --- three nodes, one after the other so the relay lists them in that order
for n in 1 2 3; do
  "$bin/peer-node" 127.0.0.1 "$port" "$root/sample_files/node$n" --bind 127.0.0.1 \
    2>"$logs/node$n.log" &
  nodes+=($!)
  wait_for_line "$logs/node$n.log" "registered with relay" "$!" "node $n"
done

# --- banner
{
  echo
  echo "  relay     127.0.0.1:$port"
  for n in 1 2 3; do
    addr=$(sed -n 's/.*listening on \([^ ,]*\).*/\1/p' "$logs/node$n.log" | head -n 1)
    files=$(cd "$root/sample_files/node$n" && ls | tr '\n' ' ')
    printf '  node %s    %-16s sample_files/node%s: %s\n' "$n" "$addr" "$n" "$files"
  done
  echo
  if [ -t 0 ]; then
    echo "  Type a file name (hello.txt, notes.txt, ...) at the prompt; 'help' lists commands;"
    echo "  'get logo.png -o logo.png' saves a file. 'quit' or Ctrl-D stops everything."
  fi
  shown=$bin
  [ "$PWD" = "$root" ] && shown=target/debug
  echo "  In another terminal: $shown/peer-client 127.0.0.1 $port hello.txt"
  echo
} >&2

# --- the client, reading this terminal (or stdin when piped). It runs in the
# background only so that `wait` lets a signal to this script through at once
# (bash runs traps only after a foreground command ends); `<&0` keeps stdin,
# which bash would otherwise replace with /dev/null for a background command.
"$bin/peer-client" 127.0.0.1 "$port" "$@" <&0 &
client=$!
wait "$client"
status=$?
client=
exit "$status"
