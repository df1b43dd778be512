#!/usr/bin/env bash
# Baseline for BenchmarkAppend: the plain one-row-per-transaction insert rate
# of this Postgres, with pgbench at 16 clients, into a table shaped like the
# adapter's (same columns, keys and indexes, from migrations/0001_events.sql).
#
#   eventstore/postgres/bench/pgbench.sh            # 16 clients, 3 runs of 20 s
#   CLIENTS=1 RUNS=1 SECONDS_PER_RUN=10 eventstore/postgres/bench/pgbench.sh
#
# Connection: PIC_TEST_POSTGRES_URL, default as in the Go tests. Compare the
# median tps with `go test -bench Append -count 5 -run '^$' ./eventstore/postgres/`
# (appends/s at writers=16).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
url=${PIC_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test?sslmode=disable}
clients=${CLIENTS:-16}
runs=${RUNS:-3}
secs=${SECONDS_PER_RUN:-20}
pgbench=$(command -v pgbench || ls /usr/lib/postgresql/*/bin/pgbench | tail -1)

setup() {
	psql "$url" -q -v ON_ERROR_STOP=1 <<SQL
DROP SCHEMA IF EXISTS pgbench_eventstore CASCADE;
CREATE SCHEMA pgbench_eventstore;
SET search_path TO pgbench_eventstore;
$(cat "$here/../migrations/0001_events.sql")
SQL
}
trap 'psql "$url" -q -c "DROP SCHEMA IF EXISTS pgbench_eventstore CASCADE"' EXIT

for i in $(seq "$runs"); do
	setup
	"$pgbench" -n -M prepared -c "$clients" -j 2 -T "$secs" -f "$here/insert.sql" "$url" |
		grep -E '^(number of transactions actually processed|tps)'
done
