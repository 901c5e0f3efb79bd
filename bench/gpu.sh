#!/usr/bin/env bash
# The benchmarks that mean something on a GPU, in one go (about 8 minutes on one
# data-centre GPU), for BENCHMARKS.md:
#   bash bench/gpu.sh DATA_DIR [OUT_DIR]
# DATA_DIR holds Fashion-MNIST's four .gz files; results land in OUT_DIR (default
# bench/results/gpu), one .log and one .json per step, plus gpu.txt (nvidia-smi, torch).
# PY picks the interpreter (default .venv/bin/python; it needs a CUDA build of torch).
# Each step has its own time limit and a failed step does not stop the others; the
# exit status counts the failed steps. The CPU-only benchmarks (threads under load,
# inference against ONNX Runtime on 2 cores, tf.keras side by side) are left out.
set -uo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: bash bench/gpu.sh DATA_DIR [OUT_DIR]}
OUT=${2:-bench/results/gpu}
PY=${PY:-.venv/bin/python}
export PYTHONPATH=${PYTHONPATH:-$PWD/src}
mkdir -p "$OUT"
failed=0
step() {  # step NAME SECONDS COMMAND...: run it with a limit, log it, count a failure
  local name=$1 limit=$2; shift 2
  echo "== $name (limit ${limit}s): $*"
  local start=$SECONDS
  timeout "$limit" "$@" >"$OUT/$name.log" 2>&1
  local status=$?
  echo "   exit $status after $((SECONDS - start)) s; last lines:"
  tail -n 3 "$OUT/$name.log" | sed 's/^/   /'
  [ "$status" -eq 0 ] || failed=$((failed + 1))
}

{ nvidia-smi || true; "$PY" -c "import torch; print('torch', torch.__version__, 'cuda',
torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0),
'bf16', torch.cuda.is_available() and torch.cuda.is_bf16_supported())"; } >"$OUT/gpu.txt" 2>&1
cat "$OUT/gpu.txt"
"$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "no CUDA GPU visible to $PY: nothing to measure"; exit 1; }

step compute-floor 60 "$PY" bench/compute_floor.py --device cuda --json "$OUT/compute-floor.json"
step step-profile 60 "$PY" bench/step_profile.py --device cuda --steps 300
step throughput-b32 150 "$PY" bench/train_throughput.py --data-dir "$DATA" --device cuda \
    --repeats 3 --json "$OUT/throughput-b32.json"
step throughput-b512 60 "$PY" bench/train_throughput.py --data-dir "$DATA" --device cuda \
    --batch-size 512 --engines convlens-fp32 convlens-auto --json "$OUT/throughput-b512.json"
step precision-parity 150 "$PY" bench/precision_parity.py --data-dir "$DATA" --seeds 0 1 2 \
    --json "$OUT/precision-parity.json"
step time-to-91 90 "$PY" bench/time_to_accuracy.py --data-dir "$DATA" \
    --recipes "cnn (lesson recipe)" "quick (its recipe: 2 epochs of 45,000 images, batch 128, one-cycle)" \
    --json "$OUT/time-to-91.json"
step evaluation-share 60 "$PY" bench/evaluation_share.py --data-dir "$DATA" \
    --json "$OUT/evaluation-share.json"
# The fast preset as a user runs it, 3 seeds: its per-epoch metrics give the training
# seconds to 94% and 96% test accuracy (goal 4's figures, on this GPU).
RUNS=$(mktemp -d)
for seed in 0 1 2; do
  step fast-s$seed 120 "$PY" -m convlens train fast --seed $seed --data-dir "$DATA" \
      --runs "$RUNS" --name fast-s$seed --quiet
  cp "$RUNS/fast-s$seed/metrics.csv" "$OUT/fast-s$seed.metrics.csv" 2>/dev/null
done
"$PY" - "$OUT" <<'EOF' | tee "$OUT/fast-time-to-target.log"
import csv, json, pathlib, sys
out = pathlib.Path(sys.argv[1])
summary = {}
for path in sorted(out.glob("fast-s*.metrics.csv")):
    elapsed, reached, best = 0.0, {}, 0.0
    for row in csv.DictReader(path.open()):
        elapsed += float(row["seconds"])
        best = max(best, float(row["test_accuracy"]))
        for target in (0.94, 0.96):
            if float(row["test_accuracy"]) >= target:
                reached.setdefault(str(target), elapsed)
    summary[path.name.split(".")[0]] = {"best": best, "seconds_to": reached, "seconds": elapsed}
    print(path.name, json.dumps(summary[path.name.split(".")[0]]))
(out / "fast-time-to-target.json").write_text(json.dumps(summary, indent=2) + "\n")
EOF
rm -rf "$RUNS"
echo "done: $failed step(s) failed; results in $OUT"
exit "$failed"
