#!/usr/bin/env bash
# The emitter against raw JetStream, measured in one run against one
# embedded nats-server (file storage, R1): raw async publish of pre-encoded
# events vs the full Trail.Emit path with a running publisher, for 1.7 KB
# and 5 KB Compliance Findings; and the cost of making 12 events durable.
# Usage: bash bench/emitter.sh [COUNT [BENCHTIME]]   (defaults 5 and 1s)
# The machine is shared: read the spread (min-max) before the medians.
set -euo pipefail
cd "$(dirname "$0")/.."
count=${1:-5}
benchtime=${2:-1s}
out=bench/out
mkdir -p "$out"
raw="$out/emitter.txt"
go test ./emitter -run '^$' -bench '^(BenchmarkEmit|BenchmarkDurable12)$' -benchmem \
  -count "$count" -benchtime "$benchtime" -timeout 60m | tee "$raw"

echo
echo "## Throughput: one op is one event; the ratio column is raw-async ns/op over the engine's, i.e. the engine's events/s as a fraction of raw async publishing"
echo
grep '^BenchmarkEmit/' "$raw" | go run ./internal/benchratio -baseline raw-async
echo
echo "## 12 events made durable without a bus: one op is one batch of 12"
echo
grep '^BenchmarkDurable12/' "$raw" | go run ./internal/benchratio -baseline fdatasync
echo
echo "## Reported metrics: median (min-max) over $count runs; latencies in ms"
echo
awk '
/^Benchmark(Emit|Durable12)\// {
  name = $1; sub(/-[0-9]+$/, "", name); sub(/^Benchmark/, "", name)
  if (!(name in seen)) { seen[name] = 1; order[++n] = name }
  for (i = 5; i + 1 <= NF; i += 2) { k = ++cnt[name, $(i + 1)]; val[name, $(i + 1), k] = $i + 0 }
}
function stat(name, m, what,   c, a, b, t, s) {
  c = cnt[name, m]
  if (c == 0) return ""
  for (a = 1; a <= c; a++) s[a] = val[name, m, a]
  for (a = 1; a <= c; a++) for (b = a + 1; b <= c; b++) if (s[b] < s[a]) { t = s[a]; s[a] = s[b]; s[b] = t }
  if (what == "min") return s[1]
  if (what == "max") return s[c]
  return (c % 2) ? s[(c + 1) / 2] : (s[c / 2] + s[c / 2 + 1]) / 2
}
function cell(name, m,   f) {
  if (cnt[name, m] == 0) return "-"
  f = (m ~ /-ns$/) ? 1e6 : 1
  if (f == 1) return sprintf("%.0f (%.0f-%.0f)", stat(name, m, "med"), stat(name, m, "min"), stat(name, m, "max"))
  return sprintf("%.3f (%.3f-%.3f)", stat(name, m, "med") / f, stat(name, m, "min") / f, stat(name, m, "max") / f)
}
END {
  print "| case | engine | events/s | of raw-async | Emit call p50 | Emit call p99 | emit-to-ack p50 | emit-to-ack p99 |"
  print "|---|---|---:|---:|---:|---:|---:|---:|"
  for (j = 1; j <= n; j++) {
    name = order[j]
    if (name !~ /^Emit\//) continue
    split(name, p, "/"); base = "Emit/" p[2] "/raw-async"
    ratio = (cnt[base, "events/s"] > 0) ? sprintf("%.1f%%", 100 * stat(name, "events/s", "med") / stat(base, "events/s", "med")) : "-"
    print "| " p[2] " | " p[3] " | " cell(name, "events/s") " | " ratio " | " cell(name, "call-p50-ns") " | " cell(name, "call-p99-ns") " | " cell(name, "ack-p50-ns") " | " cell(name, "ack-p99-ns") " |"
  }
  print ""
  print "| case | engine | 12 events durable p50 | p99 |"
  print "|---|---|---:|---:|"
  for (j = 1; j <= n; j++) {
    name = order[j]
    if (name !~ /^Durable12\//) continue
    split(name, p, "/")
    print "| " p[2] " | " p[3] " | " cell(name, "p50-ns") " | " cell(name, "p99-ns") " |"
  }
}' "$raw"
echo
echo "(For raw-async the call is PublishMsgAsync and the ack latency is queueing behind up to 4000 publishes in flight;"
echo " for emit-batch12 engines the Emit call makes 12 events durable.)"
