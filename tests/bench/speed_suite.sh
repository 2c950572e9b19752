#!/bin/sh
# Writes random-weight GGUF files of real model shapes and quantization mixes
# and runs the model benchmark on each, printing tokens/s beside those of
# llama.cpp's llama-bench (../shared/tools/llama.cpp, or LLAMA_BENCH=PATH) run on
# the same file in the same run, with the ratios. KERNELS=avx2 forces both onto
# the AVX2 kernel set.
#
# usage: tests/bench/speed_suite.sh BUILD_DIR [WORK_DIR] [SHAPE:TYPE ...]
#   WORK_DIR (default /tmp/quire-speed) receives the files (up to ~12 GB) and is
#   emptied at the end unless KEEP=1. Default shapes: the 7B and 0.5B ones.
set -eu
build=${1:?usage: speed_suite.sh BUILD_DIR [WORK_DIR] [SHAPE:TYPE ...]}
work=${2:-/tmp/quire-speed}
[ $# -ge 2 ] && shift 2 || shift $#
list=${*:-"qwen2.5-7b:Q4_K_M mistral-7b:Q4_K_M qwen2.5-0.5b:Q8_0 qwen2.5-0.5b:Q4_K_M"}
threads=${THREADS:-2}
mkdir -p "$work"
for item in $list; do
	shape=${item%%:*}
	type=${item#*:}
	file="$work/$shape-$type.gguf"
	[ -f "$file" ] || "$build/tests/runtime/gen-gguf" --out "$file" --shape "$shape" --type "$type" >/dev/null
	echo "== $shape $type"
	QUIRE_KERNELS=${KERNELS:-} "$build/tests/bench/bench_model" -t "$threads" -r "${REPS:-1}" \
		${LLAMA_BENCH:+-R "$LLAMA_BENCH"} "$file"
	[ "${KEEP:-0}" = 1 ] || rm -f "$file"
done
