#!/usr/bin/env bash
# The GPU check: neureg's CUDA binary against its own CPU path on a GPU machine that has no
# Rust toolchain and no network. Build first (scripts/build-cuda.sh), carry the compressed
# target/cuda/release/neureg.xz there (64 MiB travel; it is unpacked here), then
#
#   OUT=/some/folder scripts/gpu-check.sh [--quick]
#
# writes under $OUT (default gpu-check/):
#   1. compare/: the same seeded short training run (Neural (model), the sample target), noise
#      evaluation and an FMN L2 attack on CPU and on CUDA, compared within stated tolerances;
#   2. oracle/: the oracle similarity matrices of the sample scans on both devices;
#   3. speed.json: ResNet18 width 1 training with and without the similarity loss and inference
#      at batch 64 and 256, and PyTorch's rates on the same GPU when torch is there;
#   4. paper/: one timed epoch of the paper's run (width 1, batch 64, similarity loss) on a
#      50,000-image CIFAR-10-format set (real if $CIFAR names one, else generated), extrapolated
#      to 40 epochs.
# summary.md says what passed, what failed and every figure. --quick shortens every step (a
# smoke test of the script itself, e.g. on the CPU with NEUREG_GPU_DEVICE=cpu).
set -uo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/gpu-check}"
bin="${NEUREG_BIN:-$root/target/cuda/release/neureg}"
gpu="${NEUREG_GPU_DEVICE:-cuda}"
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
mkdir -p "$out"
summary="$out/summary.md"
: > "$summary"
note() { echo "$*" | tee -a "$summary"; }
# Runs a step with a time limit, its output in $out/logs/NAME.log; returns its status.
step() {
  local name="$1" limit="$2"; shift 2
  mkdir -p "$out/logs"
  local start=$SECONDS
  timeout "$limit" "$@" > "$out/logs/$name.log" 2>&1
  local rc=$?
  echo "$name: exit $rc in $((SECONDS - start)) s" >> "$out/logs/steps.txt"
  if [[ $rc -ne 0 ]]; then
    note "- **$name failed** (exit $rc); the end of logs/$name.log:"
    tail -5 "$out/logs/$name.log" | sed 's/^/    /' >> "$summary"
  fi
  return $rc
}

if [[ ! -x "$bin" && -f "$bin.xz" ]]; then
  # Carried compressed (the binary's PTX kernels make it about 90 MB).
  unpacked="${TMPDIR:-/tmp}/neureg-cuda"
  python3 -c 'import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], "wb"))' "$bin.xz" "$unpacked"
  chmod +x "$unpacked"
  bin="$unpacked"
fi
note "# neureg GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
note ""
# The CUDA 13 libraries the binary links: the driver's libcuda from the system, cuBLAS, cuRAND
# and NVRTC from wherever they are installed (a PyTorch environment's nvidia wheels will do).
libs=""
for name in libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libnvrtc.so.13 libcudart.so.13; do
  found="$(find / -xdev \( -path /proc -o -path /sys \) -prune -o -name "$name" -print 2>/dev/null | head -1)"
  [[ -n "$found" ]] && libs="$libs:$(dirname "$found")"
done
export LD_LIBRARY_PATH="${libs#:}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$bin" 2>/dev/null | grep -q "not found"; then
  note "- libraries not found: $(ldd "$bin" | grep 'not found' | tr -s ' \t' ' ' | tr '\n' ';')"
fi
note "- binary: $bin ($("$bin" --version 2>&1)); GPU device: $gpu"
command -v nvidia-smi > /dev/null && note "- GPU: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
note "- CPU: $(nproc) cores"
python=python3
$python -c 'import numpy' 2> /dev/null || note "- numpy missing: the comparisons below cannot be made"
if [[ $quick -eq 1 ]]; then
  epochs=1 limit=256 samples=50 attack_samples=4 speed_steps=2 widths="0.0625" batches="8,16"
else
  epochs=2 limit=2000 samples=500 attack_samples=50 speed_steps=20 widths="1" batches="64,256"
fi
target=sample_data/targets/neural_model.npy

# 1. One seeded run on each device, then the CPU run evaluated and attacked on each device.
note ""
note "## 1. Training, noise and attack, CPU against $gpu"
for dev in cpu "$gpu"; do
  rm -rf "$out/compare/train-$dev"
  step "train-$dev" 900 "$bin" --device "$dev" train --condition neural-model --target "$target" \
    --epochs "$epochs" --train-limit "$limit" --width 0.25 --seed 0 --log-every 5 \
    --out "$out/compare/train-$dev"
done
for dev in cpu "$gpu"; do
  rm -rf "$out/compare/eval-$dev" && cp -r "$out/compare/train-cpu" "$out/compare/eval-$dev" 2> /dev/null
  step "noise-$dev" 600 "$bin" --device "$dev" eval-noise "$out/compare/eval-$dev" \
    --samples "$samples" --out "$out/compare/noise-$dev.json"
  step "attack-$dev" 600 "$bin" --device "$dev" attack "$out/compare/eval-$dev" --attack fmn \
    --norm l2 --samples "$attack_samples" --out "$out/compare/attack-$dev"
done
$python - "$out/compare" "$gpu" "$samples" >> "$summary" <<'EOF'
import json, sys, os
d, gpu, samples = sys.argv[1], sys.argv[2], int(sys.argv[3])
def lines(run):
    p = os.path.join(d, run, "metrics.jsonl")
    return [json.loads(l) for l in open(p)] if os.path.exists(p) else []
def check(what, ok, detail):
    print(f"- {'ok  ' if ok else 'FAIL'} {what}: {detail}")
a, b = lines("train-cpu"), lines(f"train-{gpu}")
steps = lambda ls: [l for l in ls if l.get("event") == "step"]
epochs = lambda ls: [l for l in ls if l.get("event") == "epoch"]
if steps(a) and steps(b):
    s, t = steps(a)[0], steps(b)[0]
    for k in ("task_loss", "sim_loss"):
        rel = abs(s[k] - t[k]) / max(abs(s[k]), 1e-6)
        check(f"first logged {k} (step {s['step']})", rel < 1e-3, f"cpu {s[k]:.6f}, {gpu} {t[k]:.6f}, relative difference {rel:.2e} (tolerance 1e-3)")
    for e, f in zip(epochs(a), epochs(b)):
        for k in ("train_accuracy", "test_accuracy"):
            diff = abs(e[k] - f[k])
            check(f"epoch {e['epoch'] + 1} {k}", diff < 0.05, f"cpu {e[k]:.4f}, {gpu} {f[k]:.4f} (tolerance 0.05: the trajectories part by float rounding)")
else:
    check("training", False, "a run has no metrics")
def stored(dev, name):
    p = os.path.join(d, f"eval-{dev}", "results", name)
    return json.load(open(p)) if os.path.exists(p) else None
na, nb = stored("cpu", "noise_gaussian.json"), stored(gpu, "noise_gaussian.json")
if na and nb:
    x, y = na["accuracy"], nb["accuracy"]
    worst = max(abs(p - q) for p, q in zip(x, y))
    check("noise accuracies of the same model", worst <= 2.0 / samples + 1e-9, f"largest difference over {len(x)} levels {worst:.4f} (tolerance 2 of {samples} images); cpu {x[-1]:.4f}, {gpu} {y[-1]:.4f} at the top level")
else:
    check("noise evaluation", False, "a result is missing")
ma, mb = [(stored(dev, "attack_fmn_l2.json") or {}).get("median") for dev in ("cpu", gpu)]
if ma is not None and mb is not None:
    rel = abs(ma - mb) / max(abs(ma), 1e-9)
    check("FMN L2 median distance of the same model", rel < 0.05, f"cpu {ma:.4f}, {gpu} {mb:.4f}, relative difference {rel:.3f} (tolerance 0.05)")
else:
    check("FMN L2 attack", False, "a result is missing")
EOF

# 2. Oracle similarity of the sample scans on both devices.
note ""
note "## 2. Oracle similarity, CPU against $gpu"
for dev in cpu "$gpu"; do
  rm -rf "$out/oracle/$dev"
  step "oracle-$dev" 300 "$bin" --device "$dev" oracle sample_data/scans/scan_{1,2,3,4}.zip --out "$out/oracle/$dev"
done
$python - "$out/oracle" "$gpu" >> "$summary" <<'EOF'
import sys, os
import numpy as np
d, gpu = sys.argv[1], sys.argv[2]
names = sorted(f for f in os.listdir(os.path.join(d, "cpu")) if f.endswith(".npy")) if os.path.isdir(os.path.join(d, "cpu")) else []
if not names:
    print("- FAIL oracle: no matrices")
for n in names:
    a = np.load(os.path.join(d, "cpu", n))
    p = os.path.join(d, gpu, n)
    if not os.path.exists(p):
        print(f"- FAIL {n}: missing on {gpu}")
        continue
    diff = float(np.abs(a - np.load(p)).max())
    print(f"- {'ok  ' if diff < 1e-4 else 'FAIL'} {n} {a.shape}: largest difference {diff:.2e} (tolerance 1e-4)")
EOF

# 3. Throughput.
note ""
note "## 3. Images per second, ResNet18 width $widths on $gpu"
step speed 600 "$bin" --device "$gpu" speed --width "$widths" --batch "$batches" \
  --steps "$speed_steps" --json "$out/speed.json" && sed -n '2,$p' "$out/logs/speed.log" | grep -v '^wrote' >> "$summary"
if [[ "$gpu" == cuda* ]] && $python -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' 2> /dev/null; then
  note "PyTorch $($python -c 'import torch; print(torch.__version__)') on the same GPU (train, train + similarity loss, inference):"
  for b in ${batches//,/ }; do
    r="$(timeout 300 $python scripts/resnet_torch.py "$widths" "$b" "$speed_steps" cuda 2>&1 | tail -1)"
    note "  batch $b: $r"
  done
fi

# 4. The paper's run: one timed epoch of 50,000 images, extrapolated to 40.
note ""
note "## 4. The paper's run (width 1, batch 64, Neural (model), strength 20) on $gpu"
data="${CIFAR:-}"
if [[ -z "$data" ]]; then
  data="$out/paper/cifar-format"
  n=$([[ $quick -eq 1 ]] && echo 1000 || echo 10000)
  $python - "$data" "$n" <<'EOF'
# CIFAR-10 binary format: per record a label byte and 3 x 32 x 32 pixel bytes; five training
# files and a test file of N records each, random pixels and labels.
import os, sys, random
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d, exist_ok=True)
rng = random.Random(0)
for name in [f"data_batch_{i}.bin" for i in range(1, 6)] + ["test_batch.bin"]:
    with open(os.path.join(d, name), "wb") as f:
        for _ in range(n):
            f.write(bytes([rng.randrange(10)]) + rng.randbytes(3072))
EOF
  note "- data: generated CIFAR-10-format set, $((5 * n)) training and $n test images (random pixels: the timing, not the accuracy, is the point)"
else
  note "- data: $data"
fi
rm -rf "$out/paper/run"
start=$SECONDS
if step paper-epoch 900 "$bin" --device "$gpu" train --data "$data" --width 1 --epochs 1 --batch 64 \
  --lr 0.1 --train-limit 0 --test-limit 0 --condition neural-model --target "$target" \
  --strength 20 --log-every 100 --out "$out/paper/run"; then
  took=$((SECONDS - start))
  note "- one epoch (training and the test-set evaluation) took $took s; 40 epochs: about $((took * 40 / 60)) min (the paper: 4.5 hours on a TITAN RTX)"
fi
note ""
note "Logs: logs/; per-step exit status and time: logs/steps.txt."
