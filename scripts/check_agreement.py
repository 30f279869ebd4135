#!/usr/bin/env python3
"""RSA and CKA of neureg (`neureg agreement`) against NumPy on random data.

    python3 scripts/check_agreement.py [path/to/neureg]

For several sizes and feature counts it writes two cosine-similarity matrices of random,
partly shared features as .npy, asks neureg for their agreement and recomputes it here in
float64: RSA as Pearson and Spearman correlation of the entries above the diagonal, linear CKA
as <HKH, HLH> / (|HKH| |HLH|), debiased CKA from the unbiased HSIC estimator (Song et al. 2012).
Prints every value and exits 1 if any differs by more than 1e-5.
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np


def cosine(x):
    c = x - x.mean(0, keepdims=True)
    e = c / np.linalg.norm(c, axis=1, keepdims=True)
    return e @ e.T


def rank(v):
    r = np.empty(len(v))
    r[np.argsort(v, kind="stable")] = np.arange(1, len(v) + 1)
    return r


def hsic_unbiased(k, l):
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    ones = np.ones(n)
    term = np.trace(k @ l) + (ones @ k @ ones) * (ones @ l @ ones) / ((n - 1) * (n - 2))
    term -= 2 / (n - 2) * (ones @ k @ l @ ones)
    return term / (n * (n - 3))


def reference(k, l):
    n = k.shape[0]
    iu = np.triu_indices(n, 1)
    x, y = k[iu], l[iu]
    h = np.eye(n) - np.ones((n, n)) / n
    kc, lc = h @ k @ h, h @ l @ h
    return {
        "rsa_pearson": np.corrcoef(x, y)[0, 1],
        "rsa_spearman": np.corrcoef(rank(x), rank(y))[0, 1],
        "cka": (kc * lc).sum() / np.sqrt((kc * kc).sum() * (lc * lc).sum()),
        "cka_debiased": hsic_unbiased(k, l) / np.sqrt(hsic_unbiased(k, k) * hsic_unbiased(l, l)),
    }


def main():
    neureg = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(__file__), "..", "target", "release", "neureg")
    rng = np.random.default_rng(0)
    worst = 0.0
    with tempfile.TemporaryDirectory() as d:
        for n, dims in [(8, 3), (20, 50), (60, 10), (120, 400)]:
            shared = rng.standard_normal((n, dims))
            a = cosine(shared + 0.8 * rng.standard_normal((n, dims))).astype(np.float32)
            b = cosine(shared + 0.8 * rng.standard_normal((n, dims))).astype(np.float32)
            pa, pb = os.path.join(d, "a.npy"), os.path.join(d, "b.npy")
            np.save(pa, a)
            np.save(pb, b)
            out = subprocess.run([neureg, "agreement", pa, pb], check=True,
                                 capture_output=True, text=True).stdout
            ours = json.loads(out)
            theirs = reference(a.astype(np.float64), b.astype(np.float64))
            for key, want in theirs.items():
                diff = abs(ours[key] - want)
                worst = max(worst, diff)
                print(f"n {n:>3}, {dims:>3} features, {key:<13} neureg {ours[key]: .7f}  NumPy {want: .7f}  diff {diff:.1e}")
    print(f"largest difference {worst:.2e} (tolerance 1e-5)")
    sys.exit(0 if worst <= 1e-5 else 1)


if __name__ == "__main__":
    main()
