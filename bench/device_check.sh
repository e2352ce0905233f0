#!/usr/bin/env bash
# The GPU checks in one run (issue 3): the engine's GPU tests, then bench.throughput at 1M titles. For a GPU machine
# that has PyTorch and transformers but neither Django nor PostgreSQL, such as the one the device tool lends.
#
#   here, once:                bash bench/device_check.sh prepare   (the packaged tokenizer -> var/bench-tokenizer)
#   on the GPU machine:        bash bench/device_check.sh           (device tool: carry ["var/bench-tokenizer"])
#
# About 5 minutes on one H200 (2 for the 1M titles of each shape, 1 for fine-tuning). Output also goes to
# $OUT/device_check.txt when OUT is set (the device tool brings that folder back). N and TRAIN shrink it for a
# smoke test on a CPU: PATH=.venv/bin:$PATH N=1000 TRAIN=100 bash bench/device_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
TOKENIZER=var/bench-tokenizer

if [[ "${1:-}" == prepare ]]; then
    .venv/bin/python -c "
from transformers import AutoTokenizer
from mlcore.engine.artifacts import default_base_model
AutoTokenizer.from_pretrained(default_base_model()).save_pretrained('$TOKENIZER')
print('tokenizer saved to $TOKENIZER')"
    exit 0
fi

[[ -d $TOKENIZER ]] || { echo "no $TOKENIZER: run 'bash bench/device_check.sh prepare' first and carry it" >&2; exit 2; }
export BENCH_TOKENIZER=$TOKENIZER PYTHONUNBUFFERED=1
log=${OUT:-/tmp}/device_check.txt
{
    date -u +"%Y-%m-%d %H:%M UTC"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi: none"
    python3 -m pytest --noconftest -p no:cacheprovider -q -rs tests/mlcore/engine/test_gpu.py
    python3 -m bench.throughput --tokenizer "$TOKENIZER" --n "${N:-1000000}" --train "${TRAIN:-20000}"
} 2>&1 | grep -v -E "Loading weights|Writing model shards" | tee "$log"
