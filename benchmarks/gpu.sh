#!/usr/bin/env bash
# GPU figures in one prepared run (< 8 minutes on one GPU): prints a markdown table and writes
# benchmarks/results_gpu.json. Needs `pip install -e ".[cuda,bench]"` (jax[cuda12], numba with CUDA).
#   bash benchmarks/gpu.sh            # full sizes, on the GPU
#   bash benchmarks/gpu.sh --quick    # seconds, on any machine (numba-cuda in its CUDA simulator)
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ "${1:-}" == "--quick" ]] && ! python -c "import numba.cuda as c, sys; sys.exit(0 if c.is_available() else 1)" 2>/dev/null; then
    export NUMBA_ENABLE_CUDASIM=1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "no nvidia-smi: CPU run"
exec timeout 480 python benchmarks/bench_gpu.py "$@"
