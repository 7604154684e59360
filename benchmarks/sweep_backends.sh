#!/usr/bin/env bash
# Wall time of one sweep on the local process pool and on Ray Tune (a local Ray instance),
# measured alternately (local, ray-tune, local, ray-tune); the results tables must agree in
# every column but wall_s. Usage: benchmarks/sweep_backends.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
B=${1:-/tmp/insitu-sweep-backends}
mkdir -p "$B"
for k in 1 2; do
  for backend in local ray-tune; do
    s=$(date +%s.%N)
    .venv/bin/insitu sweep configs/sweeps/device_step_size.yaml --backend $backend \
      --out "$B/$backend$k" --quiet > "$B/$backend$k.log" 2>&1
    e=$(date +%s.%N)
    echo "$backend run $k: wall $(python3 -c "print(round($e-$s,1))") s; load $(cut -d' ' -f1-3 /proc/loadavg)"
  done
done
.venv/bin/python - "$B" <<'PY'
import csv, sys
def table(d):
    with open(f"{sys.argv[1]}/{d}/results.csv", newline="") as fh:
        return [{k: v for k, v in r.items() if k != "wall_s"} for r in csv.DictReader(fh)]
ref = table("local1")
print("tables identical (wall_s aside):", all(table(d) == ref for d in ("ray-tune1", "local2", "ray-tune2")))
PY
