# Sourced by bench-vs-torch.sh and bench-peers.sh: $root, $bin (the release binary, built when
# missing) and $tmp (a temporary folder removed on exit) holding `fastfc data export`'s output.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin="$root/target/release/fastfc"
[ -x "$bin" ] || cargo build --release --manifest-path "$root/Cargo.toml"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin" data export --out "$tmp" >/dev/null
