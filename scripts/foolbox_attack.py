#!/usr/bin/env python3
"""A neureg run's network in PyTorch, attacked with foolbox, for comparison.

    python3 scripts/foolbox_attack.py RUN IMAGES.npy LABELS.npy ATTACK NORM STEPS

RUN is a run folder (config.json, checkpoints/last.safetensors: torchvision
names, the normalisation in data.mean and data.std); IMAGES.npy holds the
(N, 1, H, W) images on [0, 1], LABELS.npy their classes. ATTACK is one of
pgd, deepfool, ddn, fmn, cw, brendel-bethge (foolbox's defaults, STEPS
gradient steps; 0 keeps foolbox's own); NORM l0, l1, l2 or linf. PGD runs a
per-sample bisection over epsilon like neureg's, 10 rounds. Prints one JSON
line: the clean logits' largest difference to neureg's is checked by the
caller, so the logits of the first image come along, then the per-sample
distances (null: not broken), measured from the images, and the seconds.
Used by benches/attacks.rs.
"""
import json
import sys
import time

import foolbox as fb
import numpy as np
import torch

from neureg_torch import load


def attack_of(name, norm, steps):
    kw = {"steps": steps} if steps > 0 else {}
    if name == "pgd":
        return {"linf": fb.attacks.LinfPGD, "l2": fb.attacks.L2PGD}[norm](**kw)
    if name == "deepfool":
        return {"linf": fb.attacks.LinfDeepFoolAttack, "l2": fb.attacks.L2DeepFoolAttack}[norm](**kw)
    if name == "ddn":
        return fb.attacks.DDNAttack(**kw)
    if name == "fmn":
        return {
            "l0": fb.attacks.L0FMNAttack,
            "l1": fb.attacks.L1FMNAttack,
            "l2": fb.attacks.L2FMNAttack,
            "linf": fb.attacks.LInfFMNAttack,
        }[norm](**kw)
    if name == "cw":
        return fb.attacks.L2CarliniWagnerAttack(**kw)
    if name == "brendel-bethge":
        return {"linf": fb.attacks.LinfinityBrendelBethgeAttack, "l2": fb.attacks.L2BrendelBethgeAttack}[
            norm
        ](**kw)
    raise SystemExit(f"unknown attack {name}")


def distances(model, x, y, adv, norm):
    with torch.no_grad():
        fooled = model(adv).argmax(1) != y
        already = model(x).argmax(1) != y
    d = (adv - x).flatten(1)
    n = {
        "l0": (d.abs() > 1e-7).float().sum(1),
        "l1": d.abs().sum(1),
        "l2": d.pow(2).sum(1).sqrt(),
        "linf": d.abs().max(1).values,
    }[norm]
    return [
        0.0 if a else (float(v) if f else None) for a, f, v in zip(already.tolist(), fooled.tolist(), n.tolist())
    ]


def main(run, images, labels, name, norm, steps):
    torch.manual_seed(0)
    net = load(run)
    x = torch.from_numpy(np.load(images).astype(np.float32))
    y = torch.from_numpy(np.load(labels).astype(np.int64))
    model = fb.PyTorchModel(net, bounds=(0, 1))
    attack = attack_of(name, norm, steps)
    start = time.perf_counter()
    if name == "pgd":
        # The smallest epsilon per sample, as neureg searches it: bisection on [0, max].
        top = 1.0 if norm == "linf" else float(np.sqrt(x[0].numel()))
        lo, hi = torch.zeros(len(y)), torch.full((len(y),), top)
        best = x.clone()
        best_d = torch.full((len(y),), float("inf"))
        for k in range(11):
            eps = hi if k == 0 else (lo + hi) / 2
            adv = torch.stack(
                [attack.run(model, x[i : i + 1], y[i : i + 1], epsilon=float(eps[i]))[0] for i in range(len(y))]
            )
            d = distances(net, x, y, adv, norm)
            for i, v in enumerate(d):
                if v is not None and k > 0:
                    hi[i] = eps[i]
                elif k > 0:
                    lo[i] = eps[i]
                if v is not None and v < best_d[i]:
                    best_d[i], best[i] = v, adv[i]
        adv = best
    else:
        adv = attack.run(model, x, y)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        logits = net(x[:1])[0].tolist()
    print(json.dumps({"logits": logits, "distances": distances(net, x, y, adv, norm), "seconds": seconds}))


if __name__ == "__main__":
    main(*sys.argv[1:6], int(sys.argv[6]))
