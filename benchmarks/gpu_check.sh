#!/usr/bin/env bash
# The project's GPU check in one command (at most ~8 minutes on one GPU), from the repository root:
#
#   bash benchmarks/gpu_check.sh [--device cuda|cpu] [--quick] [--out DIR]
#
# 1. pytest -m gpu: the callback's exactness in fp32 / bf16-mixed / 16-mixed, topo.overlap on a side stream,
#    channels_last ResNet-18, the spatial loss, task=eval on the device, the prepared input path, one-process DDP
#    (NCCL on CUDA);
# 2. benchmarks/topoloss_bench.py --device cuda, float32 and bfloat16 weights;
# 3. benchmarks/train_throughput.py: ResNet-18 at 192 px, bf16, channels_last, prepared synthetic data; images/s and
#    TopoLoss's share of the step at τ = 0, τ = 5 and τ = 5 with topo.overlap=true (one table).
# Every stage runs under its own time limit, whatever the others did; each one's output goes to DIR (default: a new
# temporary folder), and the end prints every table with each stage's exit status and time. The exit status is that
# of the first stage that failed (0 if none did).
# --device cpu runs the same stages on the CPU (TOPONETS_TEST_DEVICE=cpu for the tests): where no GPU is, it checks
# that the script itself works. --quick: smoke sizes (the tests not marked slow, the benchmarks' --quick runs, the
# TopoLoss benchmark in float32 only).
# PYTHON selects the interpreter (default: python).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1

device=cuda quick=0 out=""
while [ $# -gt 0 ]; do
  case "$1" in
    --device) device="$2"; shift 2 ;;
    --quick) quick=1; shift ;;
    --out) out="$2"; shift 2 ;;
    *) sed -n '2,18p' "$0" >&2; exit 2 ;;
  esac
done
case "$device" in cuda|cpu) ;; *) echo "--device $device: use cuda or cpu" >&2; exit 2 ;; esac
python="${PYTHON:-python}"
out="${out:-$(mktemp -d /tmp/gpu_check.XXXXXX)}"
mkdir -p "$out"
export PYTHONUNBUFFERED=1 TOPONETS_TEST_DEVICE="$device"

status=0
summary=()
stage() {  # stage NAME LIMIT_S COMMAND...: run it into $out/NAME.log, keep its status and time
  local name="$1" limit="$2" start rc
  shift 2
  echo "== $name: $*"
  start=$(date +%s)
  timeout --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
  rc=$?
  summary+=("$name: exit $rc in $(( $(date +%s) - start )) s")
  if [ "$rc" -ne 0 ] && [ "$status" -eq 0 ]; then status=$rc; fi
  tail -n 3 "$out/$name.log"
}

if [ "$device" = cuda ]; then
  "$python" -c 'import torch; assert torch.cuda.is_available(), "no CUDA device"; print(torch.cuda.get_device_name())' \
    || exit 1
fi
quick_flag=()
markers="gpu"
if [ "$quick" = 1 ]; then quick_flag=(--quick); markers="gpu and not slow"; fi

# in this process (the GPU machine's wheels need not hold pytest-xdist, which the project's addopts use)
stage tests 150 "$python" -m pytest -q -m "$markers" tests/test_gpu.py -p no:cacheprovider -o "addopts=-ra --strict-markers"
stage topoloss_float32 75 "$python" benchmarks/topoloss_bench.py --device "$device" --dtype float32 "${quick_flag[@]}"
benches=(topoloss_float32 throughput)
if [ "$quick" = 0 ]; then
  stage topoloss_bfloat16 75 "$python" benchmarks/topoloss_bench.py --device "$device" --dtype bfloat16
  benches=(topoloss_float32 topoloss_bfloat16 throughput)
fi
stage throughput 150 "$python" benchmarks/train_throughput.py --device "$device" "${quick_flag[@]}"

echo
for name in "${benches[@]}"; do
  echo "## $name"
  grep -E '^(\||[A-Za-z].*(px|thread)|[a-z_]+=)' "$out/$name.log"
  echo
done
echo "## tests"
tail -n 1 "$out/tests.log"
echo
printf '%s\n' "${summary[@]}"
echo "logs: $out"
exit "$status"
