#!/usr/bin/env bash
# The GPU checks of the performance issue, as one prepared run on a lent GPU machine (about 8 min).
#
# That machine has PyTorch, torchvision, scikit-image, pandas, seaborn, ... but no `lpips` and no
# network, and ../shared is not sent along. Prepare here, once per session, in the repo root:
#
#   mkdir -p .whl .devweights && cp ../shared/weights/*.pth .devweights/
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl lpips==0.1.4
#
# then run it with the device tool: command `bash benchmarks/device_check.sh`, carry
# [".whl", ".devweights"], timeout_s 600. Logs land in $OUT (or ./device-out): env.txt,
# pytest_gpu.log, throughput.log, throughput_compile.log, full_table.log. Copy the figures, with
# the device named, into README "Performance".
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/device-out}"
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 IQA_BENCH_OFFLINE=1 PYTHONPATH="$PWD"
export IQA_BENCH_CACHE=/tmp/iqa-bench-cache
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/*.whl && export PYTHONPATH="/tmp/site:$PWD"
fi
if [ -d .devweights ]; then
    export IQA_BENCH_WEIGHTS="$PWD/.devweights"
fi
# Sizes, overridable for a quick dry run on CPU:
#   SCALE=0.01 B64=8 B256=2 ROUNDS=1 CHECK_TRUNKS=alex TABLE_METRICS=l2,lpips-alex bash ...
SCALE="${SCALE:-1.0}" B64="${B64:-256}" B256="${B256:-32}" ROUNDS="${ROUNDS:-5}"
CHECK_TRUNKS="${CHECK_TRUNKS:-alex,squeeze,vgg16}" TABLE_METRICS="${TABLE_METRICS:-all}"
# H100 SXM dense TF32 tensor-core peak: PyTorch runs float32 convolutions in TF32 by default, and
# throughput.py calls the metrics directly (the runner's --dtype fp32 would switch TF32 off).
PEAK="${PEAK_TFLOPS:-495}"

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', \
torchvision.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
    nproc
} >"$OUT/env.txt" 2>&1

timeout 90 python3 -m pytest -q -p no:cacheprovider -m gpu \
    tests/test_compile.py tests/test_metric_numerics.py tests/test_runner.py \
    >"$OUT/pytest_gpu.log" 2>&1
echo "pytest -m gpu: exit $?" >>"$OUT/env.txt"

timeout 100 python3 benchmarks/throughput.py --rounds "$ROUNDS" --batch-64 "$B64" \
    --batch-256 "$B256" --trunks "$CHECK_TRUNKS" --peak-tflops "$PEAK" >"$OUT/throughput.log" 2>&1
echo "throughput: exit $?" >>"$OUT/env.txt"

timeout 80 python3 benchmarks/throughput.py --rounds "$ROUNDS" --batch-64 "$B64" \
    --batch-256 "$B256" --trunks alex --compile default --peak-tflops "$PEAK" >"$OUT/throughput_compile.log" 2>&1
echo "throughput --compile: exit $?" >>"$OUT/env.txt"

timeout 280 python3 benchmarks/full_table.py --scale "$SCALE" --batch-size 256 --also-dtypes bf16 \
    --metrics "$TABLE_METRICS" \
    >"$OUT/full_table.log" 2>&1
echo "full_table: exit $?" >>"$OUT/env.txt"
cat "$OUT/env.txt"
