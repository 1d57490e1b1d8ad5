#!/usr/bin/env bash
# The GPU figures in one run, for a machine lent with a CUDA GPU (minutes of it): CUDA training of
# mnist32 and paper64 with and without --amp, the service on the CUDA execution provider, and the
# serving bench. Every figure lands in $OUT (default bench/results/gpu), summary.json last.
#
#   bash bench/gpu.sh            # needs torch with CUDA and onnxruntime-gpu ([serve-gpu]) installed
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}
PY=${PY:-python}
STEPS=${STEPS:-300}
mkdir -p "$OUT"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.csv" || true

# Training: the same CLI users run; images/s from metrics.jsonl (the last logged window).
for preset in mnist32 paper64; do
  dataset=embedded-mnist  # paper64 gets the digits resized to 64x64 RGB
  for amp in "" "--amp"; do
    tag="train-$preset${amp:+-amp}"
    timeout 240 $PY -m trainer --preset "$preset" --dataset "$dataset" --device cuda $amp \
      --max-steps "$STEPS" --log-every 50 --eval-images 256 --recalibrate-bn 2 \
      --out "$OUT/$tag" > "$OUT/$tag.log" 2>&1 || echo "$tag failed (see $OUT/$tag.log)"
  done
done

# Serving: the CUDA execution provider must be what the service reports, then the serving bench
# with both servers on CUDA (VAEGAN_PROVIDER reaches the servers through the environment).
VAEGAN_PROVIDER=cuda timeout 300 $PY -m bench.serve --quick --out "$OUT/serve.json" > "$OUT/serve.log" 2>&1 \
  || echo "serve bench failed (see $OUT/serve.log)"

$PY - "$OUT" <<'EOF'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
summary = {}
for run in sorted(out.glob("train-*/metrics.jsonl")):
    lines = [json.loads(line) for line in run.read_text().splitlines() if line.strip()]
    summary[run.parent.name + "_images_per_s"] = lines[-1].get("images_per_s") if lines else None
serve = out / "serve.json"
if serve.exists():
    summary["serve"] = {k: v for k, v in json.loads(serve.read_text()).items() if not isinstance(v, (dict, list))}
(out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
print(json.dumps(summary))
EOF
