#!/usr/bin/env bash
# Starts a private PostgreSQL cluster for fastfc's shared-study tests, from Debian's `postgresql`
# package: initdb into DIR (default: a new temporary directory) as an unprivileged user (the
# package's `postgres` account when run as root), listening on 127.0.0.1 at a free port and on a
# unix socket in DIR, with a superuser `fastfc` whose password is random and whose TCP logins use
# scram-sha-256. It prints the variables the tests read:
#   FASTFC_TEST_PG       the superuser's URL (tests create a database each from it)
#   FASTFC_TEST_PG_DATA  the cluster's data directory (the TLS test puts its certificate there)
# Usage: eval "$(scripts/pg-start.sh)"; … ; scripts/pg-stop.sh "$FASTFC_TEST_PG_DATA"
set -euo pipefail
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$bin" ]; then
    echo "pg-start.sh: no PostgreSQL server found; install Debian's package: apt-get install -y postgresql" >&2
    exit 1
fi
dir=${1:-$(mktemp -d /tmp/fastfc-pg.XXXXXX)}
mkdir -p "$dir"
as=()
if [ "$(id -u)" = 0 ]; then
    # initdb refuses to run as root.
    chown postgres: "$dir"
    as=(runuser -u postgres --)
fi
port=""
for p in $(seq 55432 55631); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then port=$p; break; fi
done
[ -n "$port" ] || { echo "pg-start.sh: no free port in 55432..55631" >&2; exit 1; }
password=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
"${as[@]}" sh -c "umask 077; printf '%s\n' '$password' > '$dir/pwfile'"
"${as[@]}" "$bin/initdb" -D "$dir/data" -U fastfc --pwfile="$dir/pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
"${as[@]}" rm -f "$dir/pwfile"
"${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=200" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
echo "export FASTFC_TEST_PG='postgresql://fastfc:$password@127.0.0.1:$port/postgres?sslmode=disable'"
echo "export FASTFC_TEST_PG_DATA='$dir/data'"
