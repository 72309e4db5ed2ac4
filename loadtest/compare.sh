#!/usr/bin/env bash
# Measures tickstream, the floor (loadtest/floor: raw sockets, a goroutine
# and a timer per stream, nothing else), go-httpbin v2.26.0 and the naive
# net/http loop the same way, one after the other on this machine, for the
# performance table (docs/performance.md):
#
#   bash loadtest/compare.sh [streams] [hold]     (default: 10000 30s)
#
# Each server runs alone; loadtest holds the streams (one event per second
# each) and reads the server's memory and CPU from /proc, and the kernel's
# TCP memory from /proc/net/sockstat.
set -euo pipefail
cd "$(dirname "$0")/.."
streams=${1:-10000}
hold=${2:-30s}
bin=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$bin"' EXIT

go build -o "$bin/loadtest" ./loadtest
go build -o "$bin/tickstream" ./local
go build -o "$bin/naive" ./loadtest/naive
go build -o "$bin/floor" ./loadtest/floor
GOBIN="$bin" go install github.com/mccutchen/go-httpbin/v2/cmd/go-httpbin@v2.26.0

# go-httpbin's /sse sends count events spread over duration.
count=$(( ${hold%s} + 120 ))
measure() { # name url command...
	local name=$1 url=$2
	shift 2
	"$@" >/dev/null 2>&1 &
	local pid=$!
	sleep 1
	echo "== $name"
	"$bin/loadtest" -url "$url" -streams "$streams" -hold "$hold" -pid "$pid"
	kill "$pid"
	wait "$pid" 2>/dev/null || true
	sleep 2
}
measure tickstream "http://127.0.0.1:28080/events" \
	"$bin/tickstream" -addr 127.0.0.1:28080 -max-streams 20000
measure floor "http://127.0.0.1:28083/events" \
	"$bin/floor" -addr 127.0.0.1:28083
measure "go-httpbin v2.26.0" "http://127.0.0.1:28081/sse?count=$count&duration=$(( count - 1 ))s" \
	"$bin/go-httpbin" -host 127.0.0.1 -port 28081 -max-duration 1h
measure naive "http://127.0.0.1:28082/events" \
	"$bin/naive" -addr 127.0.0.1:28082
