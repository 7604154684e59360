#!/usr/bin/env bash
# SIGKILL the demo run mid-epoch, resume it, compare with an uninterrupted run of the same seed.
# Usage: benchmarks/resume_identity.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
export OMP_NUM_THREADS=1
B=${1:-/tmp/insitu-resume-identity}
mkdir -p "$B"
rm -rf "$B/killed" "$B/whole"
.venv/bin/insitu run configs/demo_digits.yaml --set epochs=3 --out "$B/killed" --quiet &
pid=$!
while [ ! -f "$B/killed/checkpoint.pt" ]; do sleep 0.05; done
sleep 2
kill -9 $pid; wait $pid; echo "killed: exit status $?"
.venv/bin/python -c "
from pathlib import Path; from insitu.experiments.checkpoint import load_checkpoint
c = load_checkpoint(Path('$B/killed'))
print('checkpoint: step', c.step, 'epochs done', c.epochs_done,
      'batches into the next', None if c.progress is None else c.progress.batches)"
.venv/bin/insitu run --resume "$B/killed" --quiet
.venv/bin/insitu run configs/demo_digits.yaml --set epochs=3 --out "$B/whole" --quiet
cmp <(cut -d, -f1-9 "$B/killed/metrics.csv") <(cut -d, -f1-9 "$B/whole/metrics.csv") \
  && echo "metrics.csv identical (wall_s column aside)"
.venv/bin/python -c "
import json
a, b = (json.load(open(f'$B/{d}/summary.json')) for d in ('killed', 'whole'))
a.pop('wall_s'); b.pop('wall_s')
print('summary.json identical (wall_s aside):', a == b, a['test_acc'])"
