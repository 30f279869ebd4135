#!/usr/bin/env python3
"""The predictive model of docs/method.md section 6 in PyTorch, as an independent reference for neureg's.

Same architecture and defaults as `neureg fit-predictor` (stacked core with skip
connections, batch norm, ELU; Gaussian readout sampled around learned positions
while training; shifter; modulator; ELU + 1; Poisson loss; Adam), the same input
normalisation (statistics of the train tier), reading the same scan zip.

    python3 scripts/predictor_torch.py SCAN.zip [--epochs N] [--batch-size B] [--lr LR]
        [--channels C] [--threads T] [--truth]

prints, per epoch, the training loss, the validation correlation and the seconds taken; with
--truth (synthetic scans), also the median correlation of the predictions at the mean behaviour
with the noise-free responses of the single-shown images, and the Pearson r of their similarity
(Eq. 2, unweighted) with the noise-free similarity.

    python3 scripts/predictor_torch.py --bench IMAGES NEURONS BATCH STEPS

times STEPS training steps at BATCH on random 36 x 64 inputs with NEURONS neurons, and the
prediction of IMAGES images, printing "step_seconds predict_seconds" (for benches/predictor.rs).
Used by benches/predictor.rs (timing) and to check that a fit's quality is the model's and
not neureg's implementation.
"""
import argparse
import os
import io
import time
import zipfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_scan(path):
    z = zipfile.ZipFile(path)
    names = z.namelist()
    prefix = names[0].split("/")[0] + "/" if not names[0].startswith(("data/", "meta/")) else ""
    if not any(n.startswith(prefix + "data/") for n in names):
        prefix = ""

    def load(name):
        return np.load(io.BytesIO(z.read(prefix + name)), allow_pickle=False)

    ids = load("meta/trials/frame_image_id.npy")
    tiers = load("meta/trials/tiers.npy")
    t = len(ids)
    images = np.stack([load(f"data/images/{k}.npy").reshape(-1) for k in range(t)]).astype(np.float32)
    resp = np.stack([load(f"data/responses/{k}.npy") for k in range(t)]).astype(np.float32)
    beh = np.stack([load(f"data/behavior/{k}.npy") for k in range(t)]).astype(np.float32)
    pupil = np.stack([load(f"data/pupil_center/{k}.npy") for k in range(t)]).astype(np.float32)
    h, w = load("data/images/0.npy").shape[-2:]
    names = set(names)
    truth_name = prefix + "meta/ground_truth/responses.npy"
    truth = load("meta/ground_truth/responses.npy").reshape(t, -1) if truth_name in names else None
    return images.reshape(t, 1, h, w), resp, beh, pupil, tiers, ids, truth


class Model(nn.Module):
    def __init__(self, neurons, channels=16, layers=3, k_in=9, k_hidden=7):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for l in range(layers):
            cin, k = (1, k_in) if l == 0 else (l * channels, k_hidden)
            self.convs.append(nn.Conv2d(cin, channels, k, padding=k // 2))
            self.norms.append(nn.BatchNorm2d(channels, momentum=0.1))
        c = layers * channels
        self.mu = nn.Parameter(torch.empty(neurons, 2).uniform_(-0.5, 0.5))
        self.sigma = nn.Parameter(torch.full((neurons, 1), 0.1))
        self.features = nn.Parameter(torch.empty(c, neurons).uniform_(0, 1 / c))
        self.bias = nn.Parameter(torch.zeros(neurons))
        self.shifter = nn.Sequential(nn.Linear(2, 5), nn.Tanh(), nn.Linear(5, 2), nn.Tanh())
        self.modulator = nn.Sequential(nn.Linear(3, 10), nn.ELU(), nn.Linear(10, neurons), nn.ELU())

    def core(self, x):
        outs = []
        for l, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            inp = x if l == 0 else torch.cat(outs, 1)
            outs.append(F.elu(norm(conv(inp))))
        return torch.cat(outs, 1)

    def forward(self, x, beh, pupil):
        f = self.core(x)
        b, n = x.shape[0], self.mu.shape[0]
        grid = self.mu.unsqueeze(0).expand(b, n, 2) + self.shifter(pupil).unsqueeze(1)
        if self.training:
            grid = grid + torch.randn(b, n, 2) * self.sigma.abs().unsqueeze(0)
        grid = grid.clamp(-1, 1).unsqueeze(2)  # (B, N, 1, 2)
        pooled = F.grid_sample(f, grid, align_corners=True).squeeze(-1)  # (B, C, N)
        y = (pooled * self.features.unsqueeze(0)).sum(1) + self.bias
        return (F.elu(y) + 1) * (self.modulator(beh) + 1)


def similarity(x):
    """Eq. 2 without weights: centre over images, normalise each image's vector, dot products."""
    x = x - x.mean(0)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    return x @ x.T


def truth_report(model, X, B, P, train_idx, ids, truth):
    """Median per-neuron correlation with the noise-free responses and similarity r, single-shown images."""
    values, counts = np.unique(ids, return_counts=True)
    single = np.array([np.flatnonzero(ids == v)[0] for v in values[counts == 1]])
    s, tr = torch.from_numpy(single), torch.from_numpy(train_idx)
    with torch.no_grad():
        pred = model(X[s], B[tr].mean(0).expand(len(single), -1), P[tr].mean(0).expand(len(single), -1)).numpy()
    g = truth[single]
    pc, gc = pred - pred.mean(0), g - g.mean(0)
    per_neuron = (pc * gc).sum(0) / np.sqrt((pc ** 2).sum(0) * (gc ** 2).sum(0) + 1e-12)
    upper = np.triu_indices(len(single), 1)
    r = np.corrcoef(similarity(pred)[upper], similarity(g)[upper])[0, 1]
    return f", truth correlation median {np.median(per_neuron):.3f}, similarity r {r:.3f}"


def laplace(w):
    lap = torch.tensor([[0.0, -1, 0], [-1, 4, -1], [0, -1, 0]]).view(1, 1, 3, 3)
    k = w.reshape(-1, 1, *w.shape[-2:])
    return F.conv2d(k, lap, padding=1).pow(2).sum() / (k.pow(2).sum() + 1e-8)


def bench(images, neurons, batch, steps, channels=16):
    torch.manual_seed(0)
    model = Model(neurons, channels)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    x = torch.randn(batch, 1, 36, 64)
    r = torch.rand(batch, neurons) * 2
    b, pu = torch.randn(batch, 3).abs(), torch.randn(batch, 2)

    def step():
        pred = model(x, b, pu)
        loss = (pred - r * torch.log(pred + 1e-8)).mean() + 0.001 * model.features.abs().mean() + 0.01 * laplace(model.convs[0].weight)
        opt.zero_grad()
        loss.backward()
        opt.step()

    model.train()
    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    per_step = (time.perf_counter() - start) / steps
    model.eval()
    xs = torch.randn(images, 1, 36, 64)
    start = time.perf_counter()
    with torch.no_grad():
        for k in range(0, images, 128):
            n = min(128, images - k)
            model(xs[k:k + n], torch.ones(n, 3), torch.zeros(n, 2))
    print(per_step, time.perf_counter() - start)


def main():
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "--bench":
        # The same threads as neureg's benches: RAYON_NUM_THREADS, default all cores.
        torch.set_num_threads(int(os.environ.get("RAYON_NUM_THREADS", os.cpu_count())))
        bench(*map(int, sys.argv[2:6]))
        return
    p = argparse.ArgumentParser()
    p.add_argument("scan")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--channels", type=int, default=16)
    p.add_argument("--gamma-readout", type=float, default=0.001)
    p.add_argument("--gamma-input", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--truth", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    images, resp, beh, pupil, tiers, ids, truth = read_scan(a.scan)
    if a.truth and truth is None:
        p.error(f"{a.scan} holds no ground truth (meta/ground_truth/responses.npy)")
    tr, va = tiers == "train", tiers == "validation"
    images = (images - images[tr].mean()) / images[tr].std()
    resp = resp / np.maximum(resp[tr].std(0), 1e-12)
    beh = beh / np.maximum(beh[tr].std(0), 1e-12)
    pupil = (pupil - pupil[tr].mean(0)) / np.maximum(pupil[tr].std(0), 1e-12)
    X, R, B, P = map(torch.from_numpy, (images, resp, beh, pupil))
    model = Model(resp.shape[1], a.channels)
    opt = torch.optim.Adam(model.parameters(), lr=a.lr)
    train_idx = np.flatnonzero(tr)
    rng = np.random.default_rng(0)
    for epoch in range(1, a.epochs + 1):
        start = time.time()
        model.train()
        order = rng.permutation(train_idx)
        total, batches = 0.0, 0
        for s in range(0, len(order), a.batch_size):
            i = torch.from_numpy(order[s:s + a.batch_size])
            pred = model(X[i], B[i], P[i])
            loss = (pred - R[i] * torch.log(pred + 1e-8)).mean()
            loss = loss + a.gamma_readout * model.features.abs().mean() + a.gamma_input * laplace(model.convs[0].weight)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total, batches = total + loss.item(), batches + 1
        seconds = time.time() - start
        model.eval()
        with torch.no_grad():
            v = torch.from_numpy(np.flatnonzero(va))
            pv = model(X[v], B[v], P[v]).numpy()
        rv = resp[va]
        corr = np.nanmean([np.corrcoef(pv[:, k], rv[:, k])[0, 1] for k in range(rv.shape[1])])
        extra = truth_report(model, X, B, P, train_idx, ids, truth) if a.truth else ""
        print(f"epoch {epoch}: loss {total / batches:.4f}, validation correlation {corr:.4f}{extra}, {seconds:.3f} s", flush=True)


if __name__ == "__main__":
    main()
