#!/usr/bin/env bash
# Wheels of the packages the GPU check needs beyond a stock CUDA PyTorch image (Python 3.12 with torch, torchvision,
# lightning, torchmetrics, transformers, scikit-learn, matplotlib, pytest), for a GPU machine without a package
# index: download them here, carry the folder there, install them into a target folder and put it on PYTHONPATH.
#
#   bash benchmarks/gpu_wheels.sh [DIR]     # default DIR: .whl (in the repository root)
#   # then, on the GPU machine, from the repository root:
#   python3 -m pip install -q --no-index --no-deps --target /tmp/site DIR/*.whl && export PYTHONPATH=/tmp/site
#   PYTHON=python3 bash benchmarks/gpu_check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-.whl}"
python="${PYTHON:-python3}"
# hydra-core and omegaconf (configs), litdata (prepared chunks) with what the image lacks of their requirements
packages=(hydra-core==1.3.8 omegaconf==2.3.1 litdata==0.2.76 obstore boto3 botocore s3transfer jmespath)
platforms=()
for n in 17 24 27 28 31 34 35; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platforms[@]}" --platform manylinux2014_x86_64 -d "$dir" "${packages[@]}"
# omegaconf's parser runtime is published as a source archive only: build its (pure Python) wheel here
"$python" -m pip wheel -q --no-deps -w "$dir" antlr4-python3-runtime==4.9.3
ls "$dir"
