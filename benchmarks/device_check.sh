#!/usr/bin/env bash
# The GPU checks of the performance issue, as a prepared run on a lent GPU machine.
#
# That machine has PyTorch, torchvision, scikit-image, pandas, seaborn, ... but no `lpips` and no
# network, and ../shared is not sent along. Prepare here, once per session, in the repo root:
#
#   mkdir -p .whl .devweights && cp ../shared/weights/*.pth .devweights/
#   .venv/bin/python -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#       --implementation cp --platform manylinux2014_x86_64 -d .whl lpips==0.1.4 piq==0.8.0 \
#       torchmetrics==1.9.0 lightning-utilities==0.15.3 DISTS_pytorch==0.1
#
# Device time is 15 minutes per session, machine start included, so the checks come in parts,
# most important first, each under its own timeout; every part's log is written as it runs, so
# a part cut short still returns what it printed. Two calls of the device tool, the second
# straight after the first (the machine stays warm only about 30 s), each with carry
# [".whl", ".devweights"]:
#
#   PARTS=table,throughput bash benchmarks/device_check.sh    timeout_s 360 (parts: 240 + 90 s)
#   PARTS=tests,agreement,compile bash benchmarks/device_check.sh
#                                                       timeout_s 390 (parts: 150 + 60 + 150 s)
#
# With the machine's start (1-2 min) that is at most about 14 minutes. PARTS defaults to all
# five in that order. Logs land in $OUT (or ./device-out): env.txt, full_table.log,
# throughput.log, pytest_gpu.log, agreement.log, throughput_compile.log. Copy the figures, with
# the device named, into docs/PERFORMANCE.md.
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
#   SCALE=0.01 B64=8 B256=2 ROUNDS=1 CHECK_TRUNKS=alex TABLE_METRICS=l2,lpips-alex AGREE_N=8 \
#   AGREE_DEVICES=cpu,cpu bash ...
SCALE="${SCALE:-1.0}" B64="${B64:-256}" B256="${B256:-32}" ROUNDS="${ROUNDS:-5}"
CHECK_TRUNKS="${CHECK_TRUNKS:-alex,squeeze,vgg16}" TABLE_METRICS="${TABLE_METRICS:-all}"
PARTS=",${PARTS:-table,throughput,tests,agreement,compile},"
# H100/H200 SXM dense TF32 tensor-core peak: PyTorch runs float32 convolutions in TF32 by
# default, and throughput.py calls the metrics directly (the runner's --dtype fp32 would not).
PEAK="${PEAK_TFLOPS:-495}"

{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', \
torchvision.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0))"
    nproc
    echo "parts: $PARTS"
} >>"$OUT/env.txt" 2>&1

part() { [[ "$PARTS" == *",$1,"* ]]; }

if part table; then
    # The set is stored as the archives store it (256x256 PNGs), so generating it and the cold
    # run's decoding take a while: 250 distinct samples per subset (the rest hard links, each
    # still decoded on its own) and no bf16 run keep it inside the limit.
    timeout 240 python3 benchmarks/full_table.py --scale "$SCALE" --batch-size 256 --pool 250 \
        --metrics "$TABLE_METRICS" >"$OUT/full_table.log" 2>&1
    echo "full_table: exit $?" >>"$OUT/env.txt"
fi

if part throughput; then
    timeout 90 python3 benchmarks/throughput.py --rounds "$ROUNDS" --batch-64 "$B64" \
        --batch-256 "$B256" --trunks "$CHECK_TRUNKS" --peak-tflops "$PEAK" \
        >"$OUT/throughput.log" 2>&1
    echo "throughput: exit $?" >>"$OUT/env.txt"
fi

if part tests; then
    timeout 150 python3 -m pytest -q -rs -p no:cacheprovider -m gpu \
        tests/test_compile.py tests/test_metric_numerics.py tests/test_runner.py \
        tests/test_autocast_agreement.py \
        >"$OUT/pytest_gpu.log" 2>&1
    echo "pytest -m gpu: exit $?" >>"$OUT/env.txt"
fi

if part agreement; then
    # The bridged metrics, DISTS and LPIPS+ on CUDA against the CPU: the figures a GPU test's
    # tolerance for them must come from (pyiqa and VGG16 weights are absent there: listed).
    timeout 60 python3 benchmarks/device_agreement.py --devices "${AGREE_DEVICES:-cpu,cuda}" \
        --n "${AGREE_N:-128}" >"$OUT/agreement.log" 2>&1
    echo "agreement: exit $?" >>"$OUT/env.txt"
fi

if part compile; then
    # 64x64 only: every new input shape compiles again, and the 64x64 rows carry the targets.
    timeout 150 python3 benchmarks/throughput.py --rounds "$ROUNDS" --batch-64 "$B64" \
        --sizes 64 --trunks alex --compile default --peak-tflops "$PEAK" \
        >"$OUT/throughput_compile.log" 2>&1
    echo "throughput --compile: exit $?" >>"$OUT/env.txt"
fi
cat "$OUT/env.txt"
