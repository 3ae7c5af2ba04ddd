#!/usr/bin/env bash
# The CPU engine at several commits, side by side in one run on this machine (issue #27): the
# seed's best model's epoch at 1 thread (`fastfc bench --epochs 10`: the median epoch, which
# every commit reports), Hyperband 10/3/2 and the seed's random search (108 x 10 epochs) at 2
# threads, seed 42, on Debian's Fashion-MNIST where installed (else the embedded copy). ROUNDS
# rounds (default 3), the commits in turn within each, so a slow spell of a shared VM falls on
# all of them; each figure is the median over the rounds, with the range. Each commit is built
# in a clone under $WORK (default /tmp/fastfc-revs) unless its binary is already there; each
# search's results.csv is kept there for comparison. Needs /usr/bin/time (Debian: time).
# Usage: [ROUNDS=3] scripts/bench-cpu-revs.sh REV... (e.g. 32ff3f7 HEAD)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
work=${WORK:-/tmp/fastfc-revs}
rounds=${ROUNDS:-3}
[ $# -gt 0 ] || { echo "usage: $0 REV..." >&2; exit 2; }
mkdir -p "$work"
[ -x /usr/bin/time ] || { echo "$0: needs /usr/bin/time (apt-get install time)" >&2; exit 2; }
shas=()
for rev in "$@"; do
    sha=$(git -C "$root" rev-parse --short "$rev")
    # A commit named twice (HEAD and its hash) is measured once.
    [[ " ${shas[*]} " == *" $sha "* ]] && continue
    dir="$work/$sha"
    if [ ! -x "$dir/target/release/fastfc" ]; then
        [ -d "$dir" ] || git clone -q "$root" "$dir"
        git -C "$dir" checkout -q "$sha"
        echo "building $rev ($sha) in $dir" >&2
        cargo build --release --quiet --manifest-path "$dir/Cargo.toml"
    fi
    shas+=("$sha")
done
bin() { echo "$work/$1/target/release/fastfc"; }
# The first load of Debian's files fills the preprocessed cache; do it before timing anything.
"$(bin "${shas[0]}")" data info >/dev/null
# Wall seconds of a command; its own output is dropped, unless it fails.
secs() {
    local err
    err=$(mktemp)
    if ! /usr/bin/time -o "$err.t" -f %e "$@" >/dev/null 2>"$err"; then
        echo "$0: failed: $*" >&2
        cat "$err" >&2
        exit 1
    fi
    cat "$err.t"
    rm -f "$err" "$err.t"
}
log="$work/measurements.tsv"
: >"$log"
for r in $(seq "$rounds"); do
    for sha in "${shas[@]}"; do
        b=$(bin "$sha")
        out=$(mktemp -d)
        e=$("$b" bench --device cpu --threads 1 --epochs 10 --json)
        hb=$(secs "$b" search --strategy hyperband --seed 42 --device cpu --threads 2 --out "$out/hb")
        rs=$(secs "$b" search --strategy random --trials 108 --epochs 10 --seed 42 --device cpu --threads 2 --out "$out/random")
        python3 - "$sha" "$e" "$hb" "$rs" "$out/random/summary.json" >>"$log" <<'EOF'
import json, sys
sha, e, hb, rs, summary = sys.argv[1:]
j = json.loads(e)
s = json.load(open(summary))
flop = j["gflops"] * j["epoch_seconds"] * 1e9
test = s.get("test_accuracy")
test = "-" if test is None else f"{test:.4f}"
print(sha, j["epoch_seconds"], j.get("peak_gflops") or "", hb, rs,
      f'{s["best"]["val_accuracy"]:.4f} / {test}', flop, sep="\t")
EOF
        cp "$out/random/results.csv" "$work/$sha-random.csv"
        cp "$out/hb/results.csv" "$work/$sha-hb.csv"
        rm -rf "$out"
    done
done
python3 - "$log" "${shas[@]}" <<'EOF'
import statistics, sys
log, shas = sys.argv[1], sys.argv[2:]
rows = [l.rstrip("\n").split("\t") for l in open(log)]
peaks = [float(r[2]) for r in rows if r[2]]
peak = statistics.median(peaks) if peaks else None
def fmt(v):
    return f"{statistics.median(v):.3f} ({min(v):.3f}–{max(v):.3f})"
print(f"| commit | seed epoch, 1 thread (s) | % of FMA peak | hyperband (s) | random 108x10 (s) | best val / test (random) |")
print("| --- | --- | --- | --- | --- | --- |")
for sha in shas:
    mine = [r for r in rows if r[0] == sha]
    ep, hb, rs = ([float(r[i]) for r in mine] for i in (1, 3, 4))
    flop = float(mine[0][6])  # dense FLOP of the epoch, as bench counts them
    pct = f"{100 * flop / 1e9 / statistics.median(ep) / peak:.1f}%" if peak else "-"
    best = sorted({r[5] for r in mine})
    print(f"| {sha} | {fmt(ep)} | {pct} | {fmt(hb)} | {fmt(rs)} | {', '.join(best)} |")
if peak:
    print(f"FMA peak (median of the runs that measure it): {peak:.1f} GFLOP/s on 1 thread")
EOF
echo "per-run figures: $log; results.csv of each search: $work/<commit>-{random,hb}.csv" >&2
