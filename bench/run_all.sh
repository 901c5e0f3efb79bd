#!/usr/bin/env bash
# Every benchmark behind BENCHMARKS.md, one after another, on a quiet machine (~90 min):
#   bash bench/run_all.sh DATA_DIR
# Results land in bench/results/*.json (and .log); BENCHMARKS.md quotes them.
# The tf.keras reference needs its own environment (TensorFlow must not share the product's):
#   python3 -m venv bench/.venv-tf && bench/.venv-tf/bin/pip install tensorflow-cpu==2.21.0
set -euo pipefail
cd "$(dirname "$0")/.."
DATA=${1:?usage: bash bench/run_all.sh DATA_DIR}
PY=.venv/bin/python
OUT=bench/results
mkdir -p "$OUT"
run() { local name=$1; shift; echo "== $name: $*"; "$@" 2>&1 | tee "$OUT/$name.log"; }

run compute-floor $PY bench/compute_floor.py --json "$OUT/compute-floor.json"
run throughput-b32 $PY bench/train_throughput.py --data-dir "$DATA" --json "$OUT/throughput-b32.json"
run throughput-b64 $PY bench/train_throughput.py --data-dir "$DATA" --batch-size 64 \
    --engines convlens-fp32 convlens-auto --json "$OUT/throughput-b64.json"
if [ -x bench/.venv-tf/bin/python ]; then
  for model in cnn dnn; do
    run keras-$model bench/.venv-tf/bin/python bench/keras_lesson.py --data-dir "$DATA" --model $model
    tail -n 1 "$OUT/keras-$model.log" > "$OUT/keras-$model.json"
  done
  # convlens and tf.keras in alternating rounds: natively, capped to AVX2, and with one
  # CPU-bound neighbour (issue #12, goals 1-3)
  for isa in native avx2; do
    run side-by-side-$isa $PY bench/side_by_side.py --data-dir "$DATA" \
        --keras-python bench/.venv-tf/bin/python --isa $isa --json "$OUT/side-by-side-$isa.json"
    run side-by-side-$isa-spinner $PY bench/side_by_side.py --data-dir "$DATA" \
        --keras-python bench/.venv-tf/bin/python --isa $isa --spinners 1 \
        --json "$OUT/side-by-side-$isa-spinner.json"
  done
fi
run startup-memory $PY bench/startup_and_memory.py --data-dir "$DATA" --json "$OUT/startup-memory.json"
# one image through predict_proba, predict_arrays and look() against ONNX Runtime alone,
# round-robin (issue #12, goal 7), natively and capped to AVX2
run inference-latency $PY bench/inference_latency.py --ideas --steal 24 --json "$OUT/inference-latency.json"
ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 run inference-latency-avx2 $PY \
    bench/inference_latency.py --json "$OUT/inference-latency-avx2.json"
# convlens.predict(run) against its network, and where a prediction of files and of the
# web page's request goes, stage by stage, on a one-epoch cnn run (goal 7)
PREDICT_RUNS=$(mktemp -d)
.venv/bin/convlens train cnn --epochs 1 --train-subset 2000 --test-subset 500 --threads 1 \
    --data-dir "$DATA" --runs "$PREDICT_RUNS" --name cnn-predict --quiet
run inference-latency-run $PY bench/inference_latency.py --run "$PREDICT_RUNS/cnn-predict" \
    --json "$OUT/inference-latency-run.json"
run inference-batches-run $PY bench/inference.py "$PREDICT_RUNS/cnn-predict" --threads 2 \
    --json "$OUT/inference-batches-run.json"
run predict-stages $PY bench/predict_stages.py "$PREDICT_RUNS/cnn-predict" --data-dir "$DATA" \
    --json "$OUT/predict-stages.json"
rm -rf "$PREDICT_RUNS"
run precision-parity $PY bench/precision_parity.py --data-dir "$DATA" --json "$OUT/precision-parity.json"
run time-to-91 $PY bench/time_to_accuracy.py --data-dir "$DATA" --json "$OUT/time-to-91.json" \
    --recipes "cnn (lesson recipe)" "cnn, batch 64, lr 2e-3"
run time-to-91-seeds $PY bench/time_to_accuracy.py --data-dir "$DATA" --seeds 0 1 2 \
    --recipes "cnn-bn, batch 64, one-cycle" "quick (its recipe: 2 epochs of 45,000 images, batch 128, one-cycle)" \
    --json "$OUT/time-to-91-seeds.json"
# The fast preset as a user runs it, 3 seeds (about 5 minutes each); its per-epoch metrics.
RUNS=$(mktemp -d)
for seed in 0 1 2; do
  run fast-preset-s$seed .venv/bin/convlens train fast --seed $seed --data-dir "$DATA" \
      --runs "$RUNS" --name fast-s$seed --quiet
  cp "$RUNS/fast-s$seed/metrics.json" "$OUT/fast-preset-s$seed.metrics.json"
  cp "$RUNS/fast-s$seed/metrics.csv" "$OUT/fast-preset-s$seed.metrics.csv"
done
rm -rf "$RUNS"
