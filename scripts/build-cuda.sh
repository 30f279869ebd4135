#!/usr/bin/env bash
# Builds neureg's CUDA binary on a machine without a GPU or a system CUDA
# toolkit: PyPI's CUDA compiler wheels in .cuda-venv/, unversioned link names
# and a stub libcuda.so (the driver is loaded on the GPU machine) in
# .cuda-stubs/, the compute capability given explicitly.
#
#   scripts/build-cuda.sh [--compute-cap 90]
#
# The binary is target/cuda/release/neureg (and neureg.xz, compressed to carry). At run time it needs the NVIDIA
# driver (libcuda.so.1) and the CUDA 13 libraries libcublas, libcublasLt,
# libcurand, libnvrtc and libcudart on LD_LIBRARY_PATH (see README, "On a GPU").
set -euo pipefail

compute_cap=90
while [[ $# -gt 0 ]]; do
  case "$1" in
    --compute-cap) compute_cap="${2:?--compute-cap needs a number, e.g. 90 for H100/H200}"; shift 2 ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "build-cuda.sh: unknown argument '$1' (try --help)" >&2; exit 2 ;;
  esac
done
[[ "$compute_cap" =~ ^[0-9]+$ ]] || { echo "build-cuda.sh: --compute-cap must be a number such as 80, 89 or 90, not '$compute_cap'" >&2; exit 2; }

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
venv="$root/.cuda-venv"
stubs="$root/.cuda-stubs"

# One toolkit release for every compiler part: a newer nvvm than nvcc breaks
# candle-kernels' PTX build, and cudarc 0.19 knows CUDA up to 13.4.
cuda_release=13.4.92
wheels=(
  "nvidia-cuda-nvcc==$cuda_release" "nvidia-nvvm==$cuda_release"
  "nvidia-cuda-crt==$cuda_release" "nvidia-cuda-runtime==$cuda_release"
  "nvidia-cuda-nvrtc==$cuda_release" "nvidia-cuda-cccl==13.3.5.0.6"
  "nvidia-curand==10.4.5.25" "nvidia-cublas==13.4.3.11"
)

if [[ ! -x "$venv/bin/pip" ]]; then python3 -m venv "$venv"; fi
"$venv/bin/pip" install --quiet --disable-pip-version-check "${wheels[@]}"

cuda_home="$("$venv/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')"
[[ -x "$cuda_home/bin/nvcc" ]] || { echo "build-cuda.sh: no nvcc under $cuda_home after installing the wheels" >&2; exit 1; }

# The linker wants lib<name>.so; the wheels ship lib<name>.so.<major>.
mkdir -p "$stubs"
nvidia_dir="$(dirname "$cuda_home")"
for lib in nvrtc curand cublas cublasLt cudart; do
  found="$(find "$nvidia_dir" -name "lib$lib.so.[0-9]*" -print -quit)"
  if [[ -n "$found" ]]; then ln -sf "$found" "$stubs/lib$lib.so"; fi
done

# A stub driver: every cu* entry point cudarc declares, doing nothing. It only
# satisfies the linker; the binary loads the real libcuda.so.1 at run time.
sys="$(cargo metadata --format-version 1 --locked --features cuda \
  | "$venv/bin/python" -c 'import json, sys, os
pkgs = json.load(sys.stdin)["packages"]
print(next(os.path.dirname(p["manifest_path"]) for p in pkgs if p["name"] == "cudarc"))')/src/driver/sys"
grep -rhoE '\bfn cu[A-Za-z0-9_]+' "$sys" | sort -u | sed -E 's/^fn (.*)$/void \1(void) {}/' > "$stubs/cuda_stub.c"
cc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so" "$stubs/cuda_stub.c"

export CUDA_HOME="$cuda_home" CUDA_PATH="$cuda_home" CUDA_COMPUTE_CAP="$compute_cap"
export PATH="$cuda_home/bin:$PATH"
export LIBRARY_PATH="$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
export CARGO_TARGET_DIR="$root/target/cuda"
nvcc --version | tail -2
cargo build --release --locked --features cuda --bin neureg
# The binary carries its kernels as PTX text (about 90 MB); compressed it travels in 16 MB.
"$venv/bin/python" - "$CARGO_TARGET_DIR/release/neureg" <<'EOF'
import lzma, shutil, sys
with open(sys.argv[1], "rb") as src, lzma.open(sys.argv[1] + ".xz", "wb", preset=6) as dst:
    shutil.copyfileobj(src, dst)
EOF
echo "built $CARGO_TARGET_DIR/release/neureg (compute capability $compute_cap) and neureg.xz"
