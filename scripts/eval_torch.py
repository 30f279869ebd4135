#!/usr/bin/env python3
"""A run's clean and noisy accuracy recomputed in PyTorch, an independent check of neureg's
evaluation (batch norm in evaluation mode, the input normalisation, the ResNet itself).

    neureg eval-noise RUN --out noise.json --samples 1000 --save-images IMAGES
    python3 scripts/eval_torch.py RUN IMAGES

IMAGES holds what neureg evaluated: labels.npy and, per level, noisy_<kind>_<k>.npy with the
(N, 1, 32, 32) noisy images on [0, 1]. Prints, per level, neureg's stored accuracy
(RUN/results/noise_<kind>.json), PyTorch's on the same images, and their difference; exits
with 1 when any differs by more than 0.5 percentage points.

Needs torch, numpy and safetensors (pip install torch numpy safetensors).
"""
import json
import sys

import numpy as np
import torch

from neureg_torch import load


def main(run, images):
    net = load(run)
    meta = json.load(open(f"{images}/images.json"))
    curve = json.load(open(f"{run}/results/noise_{meta['kind']}.json"))
    labels = torch.from_numpy(np.load(f"{images}/labels.npy").astype(np.int64))
    worst = 0.0
    print(f"{'level':>6} {'neureg':>8} {'pytorch':>8} {'diff':>8}")
    for k, level in enumerate(meta["levels"]):
        x = torch.from_numpy(np.load(f"{images}/noisy_{meta['kind']}_{k}.npy").astype(np.float32))
        with torch.no_grad():
            predicted = torch.cat([net(x[i : i + 500]).argmax(1) for i in range(0, len(x), 500)])
        ours = float((predicted == labels).float().mean())
        theirs = curve["accuracy"][k]
        worst = max(worst, abs(ours - theirs))
        print(f"{level:6.3f} {theirs:8.4f} {ours:8.4f} {ours - theirs:+8.4f}")
    print(f"largest difference {worst:.4f} on {len(labels)} images")
    sys.exit(1 if worst > 0.005 else 0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
