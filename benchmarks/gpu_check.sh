#!/usr/bin/env bash
# GPU acceptance of `tfcli bench` (issue 10, part 4): one GPU, under 5 minutes, one summary
# line on stdout (details on stderr and in the work directory).
#
#   benchmarks/gpu_check.sh            # needs torch with CUDA and tfcli installed ([bench])
#   TFCLI_GPU_CHECK_DIR=out benchmarks/gpu_check.sh   # keep the JSON documents in ./out
#
# What it runs (every step has its own time limit; the whole script stops at 290 s):
#   1. prefill: llama-3-8b, one layer, bf16, naive and SDPA at 1K-32K (naive points that do
#      not fit in free memory are skipped by the bench itself);
#   2. each CUDA SDPA kernel (flash, efficient, math, cudnn) at 4K: the kernel is selectable;
#   3. decode: llama-3-8b one layer at contexts 1K-32K, whole tokens (--layers all) of
#      llama-3.2-1b and qwen2.5-0.5b at 1K-4K, and four Mamba layers (state, no cache);
#   4. mixers (full, sliding, linear) once `tfcli bench --mixers` exists;
#   5. the CUDA tests of the suite (skipped without a GPU everywhere else).
# Pass criteria (the CPU targets of issue 10): SDPA peak memory within 25% of its estimate at
# seq >= 1024; SDPA core exponent within 2 +/- 0.3 over 4K-32K; median |error| of the
# predicted prefill core time <= 25%; decode median |error| <= 15% (one layer) and <= 20%
# (whole tokens); every step exits 0.
set -uo pipefail

START=$(date +%s)
DEADLINE=$((START + 290))
WORK=${TFCLI_GPU_CHECK_DIR:-$(mktemp -d -t tfcli-gpu-check.XXXXXX)}
mkdir -p "$WORK"
export XDG_CACHE_HOME="$WORK/cache"  # a fresh calibration, measured on this GPU now
HERE=$(cd "$(dirname "$0")/.." && pwd)
STATUS="$WORK/status.txt"
: >"$STATUS"

if ! python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: SKIP no CUDA device visible to torch"
    exit 0
fi

step() {  # step NAME LIMIT_SECONDS COMMAND...: run with a time limit, JSON to $WORK/NAME.json
    local name=$1 limit=$2
    shift 2
    local left=$((DEADLINE - $(date +%s)))
    if ((left < 10)); then
        echo "$name skipped-out-of-time" >>"$STATUS"
        return
    fi
    ((limit > left)) && limit=$left
    echo "[gpu_check] $name (limit ${limit}s): $*" >&2
    timeout "$limit" "$@" >"$WORK/$name.json" 2>"$WORK/$name.err"
    echo "$name $?" >>"$STATUS"
}

BENCH=(python -m tfcli bench --device cuda --dtype bf16 --json)

step prefill 90 "${BENCH[@]}" llama-3-8b --seq 1024,2048,4096,8192,16384,32768 \
    --backend naive,sdpa --repeats 5 --warmup 2
for kernel in flash efficient math cudnn; do
    step "kernel_$kernel" 20 "${BENCH[@]}" llama-3-8b --seq 4096 --backend sdpa \
        --sdpa-kernel "$kernel" --no-blocks --repeats 3
done
step decode 40 "${BENCH[@]}" llama-3-8b --mode decode --context 1024,4096,16384,32768 \
    --repeats 10 --warmup 3
step whole_llama 40 "${BENCH[@]}" llama-3.2-1b --mode decode --layers all \
    --context 1024,2048,4096 --repeats 10 --warmup 3
step whole_qwen 30 "${BENCH[@]}" qwen2.5-0.5b --mode decode --layers all \
    --context 1024,2048,4096 --repeats 10 --warmup 3
step decode_state 30 "${BENCH[@]}" mamba-2.8b --mode decode --layers 4 \
    --context 1024,16384 --repeats 10 --warmup 3
if python -m tfcli bench --help 2>/dev/null | grep -q -- "--mixers"; then
    step mixers 60 "${BENCH[@]}" llama-3-8b --mixers full,sliding:4096,linear \
        --seq 4096,8192,16384,32768 --repeats 3
fi
left=$((DEADLINE - $(date +%s)))
if ((left > 15)); then
    echo "[gpu_check] cuda tests" >&2
    (cd "$HERE" && timeout "$left" python -m pytest -q -k cuda tests/test_bench_run.py \
        >"$WORK/pytest.txt" 2>&1)
    echo "pytest $?" >>"$STATUS"
fi

python "$HERE/benchmarks/gpu_summary.py" "$WORK" "$START"
