#!/usr/bin/env python3
"""The same CIFAR ResNet as neureg (nn/models/resnet.rs) in PyTorch, for timing.

    python3 scripts/resnet_torch.py WIDTH BATCH STEPS [DEVICE]

(DEVICE: cpu, the default, or cuda) prints "train_plain train_regularised inference" in images per second: SGD
steps at batch BATCH on 1 x 32 x 32 images without and with the similarity
loss (Eq. 8-10 on a batch of BATCH 36 x 64 images, taps 1, 5, 9, 13, 17), and
evaluation-mode forward passes. Used by benches/classifier.rs.

    python3 scripts/resnet_torch.py --attack WIDTH BATCH STEPS

prints the attack gradient steps per second (evaluation mode, the gradient of
the cross-entropy with respect to a batch of BATCH images). Used by
benches/attacks.rs.
"""
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


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
        a = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(a))
        s = x if self.downsample is None else self.downsample(x)
        return a, F.relu(y + s)


class ResNet18(nn.Module):
    def __init__(self, width=1.0, classes=10):
        super().__init__()
        c = max(1, round(64 * width))
        self.conv1 = nn.Conv2d(1, c, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        blocks, cin = [], c
        for s in range(4):
            cout = c << s
            for b in range(2):
                blocks.append(Block(cin, cout, 2 if s > 0 and b == 0 else 1))
                cin = cout
        self.blocks = nn.ModuleList(blocks)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x, taps=(1, 5, 9, 13, 17)):
        h = F.relu(self.bn1(self.conv1(x)))
        out = [h] if 1 in taps else []
        for i, blk in enumerate(self.blocks):
            a, h = blk(h)
            if 2 + 2 * i in taps:
                out.append(a)
            if 3 + 2 * i in taps:
                out.append(h)
        return self.fc(h.mean((2, 3))), out


def layer_similarity(f):
    x = f.flatten(1)
    x = x - x.mean(0, keepdim=True)
    e = x / (x.pow(2).sum(1, keepdim=True) + 1e-12).sqrt()
    return e @ e.t()


def sim_loss(taps, theta, target_atanh):
    gamma = torch.softmax(theta, 0)
    s = sum(g * layer_similarity(f) for g, f in zip(gamma, taps))
    s = s.clamp(-1 + 1e-6, 1 - 1e-6)
    d = (torch.atanh(s) - target_atanh).pow(2)
    b = s.shape[0]
    return torch.triu(d, 1).sum() / (b * (b - 1) / 2)


def main(width, batch, steps, device="cpu"):
    torch.manual_seed(0)
    dev = torch.device(device)
    torch.set_default_device(dev)
    net = ResNet18(width)
    theta = torch.zeros(5, requires_grad=True)
    opt = torch.optim.SGD(list(net.parameters()) + [theta], lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = torch.randn(batch, 1, 32, 32)
    y = torch.randint(0, 10, (batch,))
    sx = torch.randn(batch, 1, 36, 64)
    t = torch.atanh((torch.rand(batch, batch) * 1.8 - 0.9))
    t = (t + t.t()) / 2

    def step(regularised):
        logits, _ = net(x)
        loss = F.cross_entropy(logits, y)
        if regularised:
            _, taps = net(sx)
            loss = loss + 20 * sim_loss(taps, theta, t)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def wait():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def rate(run):
        run()
        wait()
        start = time.perf_counter()
        for _ in range(steps):
            run()
        wait()
        return steps * batch / (time.perf_counter() - start)

    rates = []
    for regularised in (False, True):
        net.train()
        rates.append(rate(lambda: step(regularised)))
    net.eval()
    with torch.no_grad():
        rates.append(rate(lambda: net(x)))
    print(" ".join(f"{r:.2f}" for r in rates))


def attack_steps(width, batch, steps):
    torch.manual_seed(0)
    net = ResNet18(width).eval()
    x = torch.rand(batch, 1, 32, 32)
    y = torch.randint(0, 10, (batch,))

    def step():
        xv = x.clone().requires_grad_(True)
        loss = F.cross_entropy(net(xv)[0], y, reduction="sum")
        (g,) = torch.autograd.grad(loss, xv)
        return g

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    print(f"{steps / (time.perf_counter() - start):.3f}")


if __name__ == "__main__":
    # The same threads as neureg's benches: RAYON_NUM_THREADS, default all cores.
    torch.set_num_threads(int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count())))
    if sys.argv[1] == "--attack":
        attack_steps(float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]))
    else:
        main(float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *sys.argv[4:5])
