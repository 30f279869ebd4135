"""neureg's CIFAR ResNet (nn/models/resnet.rs) in PyTorch, loaded from a run folder: the network of
`config.json` with the weights of `checkpoints/last.safetensors` (torchvision's names) and the
input normalisation in data.mean and data.std. Shared by foolbox_attack.py and eval_torch.py.
"""
import json

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.numpy import load_file


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x):
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        s = x if self.downsample is None else self.downsample(x)
        return F.relu(y + s)


class ResNet(nn.Module):
    """neureg's CIFAR ResNet (nn/models/resnet.rs) with its input normalisation."""

    def __init__(self, depth, width, classes, mean, std):
        super().__init__()
        blocks = {"resnet18": [2, 2, 2, 2], "resnet34": [3, 4, 6, 3]}[depth]
        c = max(1, round(64 * width))
        self.mean, self.std = mean, std
        self.conv1 = nn.Conv2d(1, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        cin = c
        for s, n in enumerate(blocks):
            cout = c << s
            layer = []
            for b in range(n):
                layer.append(Block(cin, cout, 2 if s > 0 and b == 0 else 1))
                cin = cout
            setattr(self, f"layer{s + 1}", nn.Sequential(*layer))
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1((x - self.mean) / self.std)))
        for s in range(4):
            h = getattr(self, f"layer{s + 1}")(h)
        return self.fc(h.mean((2, 3)))


def load(run):
    config = json.load(open(f"{run}/config.json"))
    tensors = load_file(f"{run}/checkpoints/last.safetensors")
    classes = tensors["fc.bias"].shape[0]
    net = ResNet(
        config["depth"],
        config["width"],
        classes,
        float(tensors["data.mean"]),
        float(tensors["data.std"]),
    )
    state = net.state_dict()
    for k in state:
        if k.endswith("num_batches_tracked"):
            continue
        state[k] = torch.from_numpy(np.ascontiguousarray(tensors[k]))
    net.load_state_dict(state)
    return net.eval()
