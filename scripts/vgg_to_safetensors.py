#!/usr/bin/env python3
"""torchvision VGG16/VGG19 weights as a safetensors file neureg reads (its Feature control).

    python3 scripts/vgg_to_safetensors.py vgg19-dcbb9e9d.pth vgg19.safetensors
    python3 scripts/vgg_to_safetensors.py --pretrained vgg19 vgg19.safetensors   # downloads
    python3 scripts/vgg_to_safetensors.py --random vgg19 --seed 0 --until 10 out.safetensors

The first form converts a state dict saved by torchvision (`torch.save(model.state_dict())` or
the file torchvision downloads into ~/.cache/torch/hub/checkpoints); the second asks
torchvision for its ImageNet weights; the third saves a randomly initialised network (seeded),
the test fixture's kind. Only the `features.*` tensors are kept (neureg uses the conv layers),
as float32 under torchvision's names; `--until N` keeps `features.0` to `features.N`. Then:

    neureg train --condition feature --target vgg19.safetensors --feature-layer conv3_1
"""
import argparse

import torch
from safetensors.torch import save_file


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", help="a .pth state dict")
    p.add_argument("out", help="the .safetensors file to write")
    p.add_argument("--pretrained", choices=["vgg16", "vgg19"])
    p.add_argument("--random", choices=["vgg16", "vgg19"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--until", type=int, default=None, help="last features index kept")
    a = p.parse_args()
    if a.pretrained or a.random:
        import torchvision
        torch.manual_seed(a.seed)
        name = a.pretrained or a.random
        weights = "DEFAULT" if a.pretrained else None
        state = getattr(torchvision.models, name)(weights=weights).state_dict()
    elif a.source:
        state = torch.load(a.source, map_location="cpu", weights_only=True)
        state = state.get("state_dict", state)
    else:
        p.error("give a .pth file, --pretrained or --random")
    kept = {}
    for k, v in state.items():
        if not k.startswith("features."):
            continue
        if a.until is not None and int(k.split(".")[1]) > a.until:
            continue
        kept[k] = v.detach().to(torch.float32).contiguous()
    if not kept:
        raise SystemExit(f"{a.source}: no features.* tensors: not a torchvision VGG state dict")
    save_file(kept, a.out)
    print(f"wrote {len(kept)} tensors to {a.out}")


if __name__ == "__main__":
    main()
