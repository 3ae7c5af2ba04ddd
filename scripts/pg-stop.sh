#!/usr/bin/env bash
# Stops the cluster scripts/pg-start.sh started: scripts/pg-stop.sh "$FASTFC_TEST_PG_DATA".
set -euo pipefail
data=${1:?usage: pg-stop.sh DATA_DIR}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
as=()
[ "$(id -u)" = 0 ] && as=(runuser -u postgres --)
"${as[@]}" "$bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null
