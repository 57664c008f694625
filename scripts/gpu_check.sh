#!/usr/bin/env bash
# GPU check (issue 13): on a machine with a CUDA GPU, run the GPU tests of the generated
# Triton loss kernel and `w2sg bench --device cuda --quick`, writing the benchmark record
# and the logs under a results directory: $1, else $OUT, else ./results/gpu-check.
#   bash scripts/gpu_check.sh /path/to/results
# Needs: a CUDA build of torch, triton (ships with CUDA torch wheels), pytest; optional:
# liger-kernel (its JSD/KL/TVD are measured side by side when it imports).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
RES=${1:-${OUT:-results/gpu-check}}
mkdir -p "$RES"
RES=$(cd "$RES" && pwd)
if ! $PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch sees no CUDA device here; nothing to check" >&2
    exit 2
fi
$PY - <<'PY' | tee "$RES/environment.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "device", torch.cuda.get_device_name())
try:
    import triton; print("triton", triton.__version__)
except Exception as exc:
    print("triton: not importable:", exc)
PY
status=0
# GPU tests: the Triton kernel against the reference path (every named generator and typed
# ones, float32/bfloat16, benchmark shapes), no host synchronisation per step.
env -u TRITON_INTERPRET $PY -m pytest -q -m cuda tests/fdiv_torch/test_triton_kernel.py \
    --junitxml="$RES/gpu-tests.xml" 2>&1 | tee "$RES/gpu-tests.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
# Benchmark: CE vs fdiv_loss (vs Liger-Kernel when installed), 3 shapes × float32/bfloat16.
env -u TRITON_INTERPRET $PY -m w2sg bench --device cuda --quick --out "$RES" 2>&1 | tee "$RES/bench.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || status=1
echo "gpu_check: records and logs under $RES (status $status)"
exit $status
