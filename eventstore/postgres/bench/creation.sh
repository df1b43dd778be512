#!/usr/bin/env bash
# Invoice creation on Postgres against pgbench's one-row insert (#23 goal 4),
# alternating in the same minutes, with what each costs the machine: CPU per
# invoice (picd, picload, the Postgres server's processes, and the rest: the
# kernel's and other processes') and per insert, WAL records and bytes
# (pg_stat_wal), transactions per invoice.
#
#   go build -o /tmp/picd ./cmd/picd && go build -o /tmp/picload ./cmd/picload
#   eventstore/postgres/bench/creation.sh /tmp/picd [/tmp/picd.other ...]
#
# Each round runs pgbench (16 clients, 10 s, pgbench.sh's table), then each
# picd on a fresh database (created and dropped here) with picload creating
# N invoices (default 20,000) from CLIENTS clients (default 96) for 8
# merchants. Settings: ROUNDS (3), N, CLIENTS, PICLOAD (/tmp/picload),
# PGHOST_URL (postgres://postgres@127.0.0.1:5432), PORT (3790).
# CPU is read from /proc/stat, so run it on an otherwise idle machine.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
base=${PGHOST_URL:-postgres://postgres@127.0.0.1:5432}
rounds=${ROUNDS:-3}
n=${N:-20000}
clients=${CLIENTS:-96}
picload=${PICLOAD:-/tmp/picload}
port=${PORT:-3790}
db=pic_creation_bench
work=$(mktemp -d)
tick=$(getconf CLK_TCK)
export PGOPTIONS="-c client_min_messages=warning"
pid=

cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

busy() { awk '/^cpu /{print $2+$3+$4+$7+$8}' /proc/stat; }
# ticks PID: the CPU clock ticks process PID has used (0 once it is gone).
ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
# server: the CPU ticks of the Postgres server's processes, live ones and (in
# the postmaster's children's times) those that exited, as pgbench's do.
server() {
	local p sum
	sum=$(awk '{print $16 + $17}' "/proc/$(pgrep -o -x postgres)/stat")
	for p in $(pgrep -x postgres); do
		sum=$((sum + $(ticks "$p")))
	done
	echo "$sum"
}
wal() { psql "$base/postgres" -Atc "SELECT wal_records, wal_bytes FROM pg_stat_wal" | tr '|' ' '; }
commits() { psql "$base/postgres" -Atc "SELECT xact_commit FROM pg_stat_database WHERE datname = '$db'"; }
# perop TICKS N: CPU clock ticks spread over N operations, in µs each
perop() { echo $(($1 * 1000000 / tick / $2)); }

run_pgbench() {
	read -r r0 b0 < <(wal)
	local a out b s0 s1
	a=$(busy)
	s0=$(server)
	out=$(SECONDS_PER_RUN=10 RUNS=1 /usr/bin/time -f "CPU %U %S" "$here/pgbench.sh" 2>&1)
	b=$(busy)
	s1=$(server)
	read -r r1 b1 < <(wal)
	local tx tps own
	tx=$(echo "$out" | awk '/actually processed/ {print $NF}')
	tps=$(echo "$out" | awk '/^tps/ {printf "%d", $3}')
	own=$(echo "$out" | awk '/^CPU/ {printf "%d", ($2 + $3) * 100}')
	own=$((own * tick / 100))
	echo "pgbench 16 clients: $tps inserts/s; CPU µs/insert: all $(perop $((b - a)) "$tx"), pgbench $(perop "$own" "$tx"), Postgres $(perop $((s1 - s0)) "$tx"), the rest $(perop $((b - a - own - (s1 - s0))) "$tx"); WAL per insert $(((r1 - r0) / tx)) records, $(((b1 - b0) / tx)) B"
}

run_picd() {
	local bin=$1
	psql "$base/postgres" -qc "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
	rm -rf "$work/data" && mkdir -p "$work/data"
	PIC_SIGNUP_RATE_PER_MINUTE=100000 "$bin" serve --data "$work/data" --store postgres \
		--postgres-url "$base/$db?sslmode=disable" --listen "127.0.0.1:$port" --key-rate 1000000 \
		--metrics-listen "127.0.0.1:$((port + 1))" >"$work/serve.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do curl -sf "127.0.0.1:$port/readyz" >/dev/null && break; sleep 0.1; done
	local x0 a p0 out b p1 x1 s0 s1
	x0=$(commits)
	read -r r0 b0 < <(wal)
	a=$(busy)
	s0=$(server)
	p0=$(ticks "$pid")
	out=$(/usr/bin/time -f "CPU %U %S" "$picload" -url "http://127.0.0.1:$port" -clients "$clients" -merchants 8 -n "$n" \
		-metrics-url "http://127.0.0.1:$((port + 1))/metrics" -data "$work/data" 2>&1)
	b=$(busy)
	s1=$(server)
	p1=$(ticks "$pid")
	read -r r1 b1 < <(wal)
	x1=$(commits)
	kill "$pid" && wait "$pid" 2>/dev/null || true
	pid=
	local rate own
	rate=$(echo "$out" | awk '/^throughput/ {print $2}')
	own=$(echo "$out" | awk '/^CPU/ {printf "%d", ($2 + $3) * 100}')
	own=$((own * tick / 100))
	echo "$(basename "$bin") $clients clients: $rate invoices/s; CPU µs/invoice: all $(perop $((b - a)) "$n"), picd $(perop $((p1 - p0)) "$n"), picload $(perop "$own" "$n"), Postgres $(perop $((s1 - s0)) "$n"), the rest $(perop $((b - a - (p1 - p0) - own - (s1 - s0))) "$n"); WAL per invoice $(((r1 - r0) / n)) records, $(((b1 - b0) / n)) B; transactions per invoice $(echo "scale=2; ($x1 - $x0) / $n" | bc)"
}

for round in $(seq "$rounds"); do
	echo "round $round, load $(cut -d' ' -f1 /proc/loadavg)"
	run_pgbench
	for bin in "$@"; do
		run_picd "$bin"
	done
done
