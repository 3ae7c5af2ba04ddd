#!/usr/bin/env bash
# The CPU engine at several commits, side by side in one run on this machine (issue #27): the
# seed's best model's epoch at 1 thread (`fastfc bench`, twice per binary), then Hyperband 10/3/2
# and the seed's random search (108 x 10 epochs) once per binary, 2 threads, seed 42, on
# Debian's Fashion-MNIST where installed (else the embedded copy). Each commit is built in a
# clone under $WORK (default /tmp/fastfc-revs) unless its binary is already there.
# Usage: scripts/bench-cpu-revs.sh REV... (e.g. 32ff3f7 HEAD)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-/tmp/fastfc-revs}
[ $# -gt 0 ] || { echo "usage: $0 REV..." >&2; exit 2; }
mkdir -p "$work"
bins=()
for rev in "$@"; do
    sha=$(git -C "$root" rev-parse --short "$rev")
    dir="$work/$sha"
    if [ ! -x "$dir/target/release/fastfc" ]; then
        [ -d "$dir" ] || git clone -q "$root" "$dir"
        git -C "$dir" checkout -q "$sha"
        echo "building $rev ($sha) in $dir" >&2
        cargo build --release --quiet --manifest-path "$dir/Cargo.toml"
    fi
    bins+=("$sha:$dir/target/release/fastfc")
done
# The first load of Debian's files fills the preprocessed cache; do it before timing anything.
"${bins[0]#*:}" data info >/dev/null
secs() { /usr/bin/time -f %e "$@" 2>&1 >/dev/null | tail -1; }
echo "| commit | bench epoch (s, 2 runs) | % of FMA peak | hyperband (s) | random 108x10 (s) | best val / test (random) |"
echo "| --- | --- | --- | --- | --- | --- |"
for b in "${bins[@]}"; do
    sha=${b%%:*} bin=${b#*:}
    out=$(mktemp -d)
    e1=$("$bin" bench --device cpu --threads 1 --epochs 3 --json)
    e2=$("$bin" bench --device cpu --threads 1 --epochs 3 --json)
    field() { python3 -c 'import json,sys; j=json.loads(sys.argv[1]); print(j[sys.argv[2]])' "$1" "$2"; }
    # Share of the FMA peak this binary measured (older binaries measured none).
    pct=$(python3 -c 'import json,sys; j=json.loads(sys.argv[1]); p=j.get("peak_gflops"); g=j["gflops"]; print(f"{100*g/p:.1f}%" if p else "-")' "$e2")
    hb=$(secs "$bin" search --strategy hyperband --seed 42 --device cpu --out "$out/hb")
    rs=$(secs "$bin" search --strategy random --trials 108 --epochs 10 --seed 42 --device cpu --out "$out/random")
    best=$(python3 -c 'import json,sys; s=json.load(open(sys.argv[1])); v=s["best"]["val_accuracy"]; t=s["test_accuracy"]; print(f"{v:.4f} / {t:.4f}")' "$out/random/summary.json")
    printf '| %s | %.4f, %.4f | %s | %s | %s | %s |\n' "$sha" "$(field "$e1" epoch_seconds)" \
        "$(field "$e2" epoch_seconds)" "$pct" "$hb" "$rs" "$best"
    cp "$out/random/results.csv" "$work/$sha-random.csv"
    cp "$out/hb/results.csv" "$work/$sha-hb.csv"
    rm -rf "$out"
done
echo "results.csv of each search: $work/<commit>-{random,hb}.csv" >&2
