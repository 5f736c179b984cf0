#!/usr/bin/env bash
# Launch overhead, measured in one run with hyperfine: bare /bin/true,
# bubblewrap with every namespace and no capabilities, and `sandtrail run`
# with the default policy (events durably spooled, not published).
# Usage: bash bench/launch.sh [RUNS]   (needs hyperfine and bubblewrap; run as root)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
for tool in hyperfine bwrap; do
  command -v "$tool" >/dev/null || { echo "bench/launch.sh: $tool is missing (apt-get install hyperfine bubblewrap)"; exit 2; }
done
out=bench/out
mkdir -p "$out"
bin=$(mktemp -d)/sandtrail
CGO_ENABLED=0 go build -o "$bin" ./cmd/sandtrail
spool=$(mktemp -d)
# Each sandtrail run starts from an empty spool (--prepare), as a host whose
# publisher keeps the spool drained would.
hyperfine -N --warmup 20 --runs "$runs" --export-json "$out/launch.json" \
  -n 'bare /bin/true' '/bin/true' \
  -n 'bwrap --unshare-all --cap-drop ALL' 'bwrap --unshare-all --cap-drop ALL --ro-bind / / /bin/true' \
  --prepare "rm -rf $spool" -n 'sandtrail run (default policy)' "$bin run --no-publish --spool $spool -- /bin/true"
python3 - "$out/launch.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
bw = r["bwrap --unshare-all --cap-drop ALL"]["median"]
print("| command | median ms | mean ms | stddev ms | / bwrap |")
print("|---|---:|---:|---:|---:|")
for name, x in r.items():
    print(f"| {name} | {x['median']*1e3:.2f} | {x['mean']*1e3:.2f} | {x['stddev']*1e3:.2f} | {x['median']/bw:.2f} |")
PY
rm -rf "$spool" "$(dirname "$bin")"
