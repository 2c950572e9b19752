#!/usr/bin/env bash
# End-to-end: quire model run / info and quire extract with the shared
# reference models: the printed answer is byte for byte the reference engine's
# greedy output (NUL bytes included) for llama, phi3, gemma2 and gemma3 files
# and with LoRA adapters given by --adapter or by model.adapters; adapter
# errors are clear, in quire doctor too; extraction runs under the gemma and phi3 templates and
# with an adapter. Prints TAP. Usage: model.sh QUIRE MAKE_INVOICE
set -u
QUIRE=$1
MAKE_INVOICE=$2
. "$(dirname "$0")/tap.sh"

shared="${QUIRE_SHARED_DIR:-}"
tests="run-llama-nul-bytes run-phi3 run-gemma2 run-gemma3 run-adapter info-adapter configured-adapters
  adapter-wrong-arch adapter-bad-scale doctor-adapters doctor-adapter-refused extract-gemma-template extract-phi3-template extract-with-adapter"
echo "1..$(echo $tests | wc -w)"
if [ ! -f "$shared/reference/synth-llama-F32.json" ]; then
  for t in $tests; do skip "/e2e/model/$t" "../shared not present"; done
  exit 0
fi

work=$(mktemp -d /tmp/quire-e2e-model-XXXXXX)
trap 'rm -rf "$work"' EXIT
export QUIRE_GENERAL_DATA_DIR="$work/data"
unset QUIRE_CONFIG QUIRE_MODEL_PATH QUIRE_MODEL_ENDPOINT QUIRE_MODEL_ADAPTERS QUIRE_MODEL_TEMPLATE
models="$shared/models"
adapter="$models/adapters/synth-llama-lora-r8-F32.gguf"

# want REFERENCE PROMPT_INDEX: the reference's 32 greedy tokens' bytes, as hex
want() {
  python3 -c "
import json, sys
g = json.load(open(sys.argv[1]))['prompts'][int(sys.argv[2])]['generated']
print(''.join(g['pieces_hex']))" "$shared/reference/$1.json" "$2"
}
# same_as REFERENCE PROMPT_INDEX quire-args...: quire's answer (without its final newline) is the reference's
same_as() {
  local ref=$1 i=$2
  shift 2
  local got
  got=$("$QUIRE" model run "$@" --template raw --max-tokens 32 2>"$work/err" | head -c -1 | od -An -tx1 | tr -d ' \n')
  [ -n "$got" ] && [ "$got" = "$(want "$ref" "$i")" ]
}

check "/e2e/model/run-llama-nul-bytes" 'same_as synth-llama-F32 0 "$models/synth-llama-F32.gguf" --prompt "Once upon a time" &&
  [ "$(want synth-llama-F32 0 | grep -o "^\(..\)*00" | wc -l)" = 1 ]'
check "/e2e/model/run-phi3" 'same_as synth-phi3-F32 0 "$models/synth-phi3-F32.gguf" --prompt "Once upon a time"'
check "/e2e/model/run-gemma2" 'same_as synth-gemma2-F32 0 "$models/synth-gemma2-F32.gguf" --prompt "Once upon a time"'
check "/e2e/model/run-gemma3" 'same_as synth-gemma3-F32 0 "$models/synth-gemma3-F32.gguf" --prompt "Once upon a time"'
check "/e2e/model/run-adapter" 'same_as "synth-llama-F32+lora-r8-F32-scale0.5" 1 "$models/synth-llama-F32.gguf" \
  --adapter "$adapter@0.5" --prompt "The invoice number is"'

sha=$(python3 -c "import json, sys; print(json.load(open(sys.argv[1]))['adapter']['sha256'])" \
  "$shared/reference/synth-llama-F32+lora-r8-F32-scale0.5.json")
"$QUIRE" model info "$models/synth-llama-F32.gguf" --adapter "$adapter@0.5" >"$work/info" 2>&1
check "/e2e/model/info-adapter" 'grep -q "^adapters:      1 (LoRA" "$work/info" && grep -qF "  $adapter (" "$work/info" &&
  grep -q "^    sha256 $sha$" "$work/info" && grep -q "alpha 16, rank 8, scale 0.5 (factor 1), 9 weight matrices" "$work/info"'

# model.adapters applies to model.path: the same answer without --adapter
check "/e2e/model/configured-adapters" 'QUIRE_MODEL_PATH="$models/synth-llama-F32.gguf" QUIRE_MODEL_ADAPTERS=" $adapter@0.5 " \
  same_as "synth-llama-F32+lora-r8-F32-scale0.5" 1 "$models/synth-llama-F32.gguf" --prompt "The invoice number is" &&
  QUIRE_MODEL_PATH="$models/synth-llama-F32.gguf" QUIRE_MODEL_ADAPTERS="$adapter@0.5" \
  "$QUIRE" model info "$models/synth-llama-F32.gguf" | grep -q "^    sha256 $sha$" &&
  QUIRE_MODEL_PATH="$models/synth-llama-F32.gguf" QUIRE_MODEL_ADAPTERS="$adapter@0.5" \
  "$QUIRE" model info "$models/synth-llama-Q8_0.gguf" | grep -q "^adapters:      none$"'

check "/e2e/model/adapter-wrong-arch" '! "$QUIRE" model info "$models/synth-llama-F32.gguf" \
  --adapter "$models/adapters/synth-qwen2-lora-r8-F32.gguf" 2>"$work/err" &&
  grep -q "adapter is for architecture .qwen2., the model is .llama." "$work/err"'
check "/e2e/model/adapter-bad-scale" '! "$QUIRE" model run "$models/synth-llama-F32.gguf" --prompt x \
  --adapter "$adapter@half" 2>"$work/err" && grep -q "scale after .@. is not a number" "$work/err"'

# quire doctor loads model.adapters onto model.path (its other checks need a database: not judged here)
check "/e2e/model/doctor-adapters" 'QUIRE_MODEL_PATH="$models/synth-llama-F32.gguf" \
  QUIRE_MODEL_ADAPTERS="$adapter@0.5, $models/adapters/synth-llama-lora-r8-F16.gguf" "$QUIRE" doctor 2>&1 |
  grep -q "^ok    model.adapters: 2 LoRA adapters fit $models/synth-llama-F32.gguf$"'
check "/e2e/model/doctor-adapter-refused" 'QUIRE_MODEL_PATH="$models/synth-qwen2-F32.gguf" QUIRE_MODEL_ADAPTERS="$adapter" \
  "$QUIRE" doctor 2>&1 | grep -q "^FAIL  model.adapters: adapter .*: adapter is for architecture .llama., the model is .qwen2."'

"$MAKE_INVOICE" "$work/invoice.pdf" --number INV-E2E-0016
# extract_with VAR=VALUE...: quire extract runs the model (schema-constrained) with that configuration
extract_with() {
  env "$@" QUIRE_MODEL_CONTEXT=512 "$QUIRE" extract "$work/invoice.pdf" 2>>"$work/extract.log" |
    tr -d "\n\t " | grep -q "\"method\":\"model\",\"fields\":{\"supplier_name\""
}
check "/e2e/model/extract-gemma-template" 'extract_with QUIRE_MODEL_PATH="$models/synth-gemma3-Q8_0.gguf" QUIRE_MODEL_TEMPLATE=gemma'
check "/e2e/model/extract-phi3-template" 'extract_with QUIRE_MODEL_PATH="$models/synth-phi3-Q4_K_M.gguf" QUIRE_MODEL_TEMPLATE=phi3'
check "/e2e/model/extract-with-adapter" 'extract_with QUIRE_MODEL_PATH="$models/synth-llama-Q4_K_M.gguf" \
  QUIRE_MODEL_ADAPTERS="$models/adapters/synth-llama-lora-r8-F16.gguf@0.5"'
[ "$failed" = 0 ]
