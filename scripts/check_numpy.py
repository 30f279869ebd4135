"""Independent NumPy check of `neureg snr`, `oracle` and `variability` (docs/method.md sections 2-5).

Reads the scans straight from their zips with NumPy, recomputes Eq. 1-5 in
float64 from the definitions, and compares with what the CLI wrote.

    neureg snr S1 --out OUT/w.npy
    neureg oracle S1 S2 ... --out OUT/oracle
    neureg variability S1 S2 ... --json OUT/v.json
    python3 scripts/check_numpy.py OUT S1 S2 ...
"""
import io, json, sys, zipfile
import numpy as np

def load(path):
    z = zipfile.ZipFile(path)
    names = z.namelist()
    root = next(n[: -len("meta/trials/frame_image_id.npy")] for n in names if n.endswith("meta/trials/frame_image_id.npy"))
    get = lambda rel: np.load(io.BytesIO(z.read(root + rel)))
    ids = get("meta/trials/frame_image_id.npy")
    r = np.stack([get(f"data/responses/{t}.npy") for t in range(len(ids))]).astype(np.float64)
    return ids, r

def weights(ids, r):
    u, c = np.unique(ids, return_counts=True)
    oracle = u[c >= 2]
    means = np.stack([r[ids == a].mean(0) for a in oracle])
    noise = np.stack([r[ids == a].var(0, ddof=1) for a in oracle]).mean(0)
    signal = means.var(0, ddof=1)
    w = np.where((signal > 0) & (noise > 0), np.sqrt(signal / np.where(noise > 0, noise, 1)), 0)
    return w

def oracle(ids, r, common):
    w = weights(ids, r)
    rows = [(k, t) for k, a in enumerate(common) for t in np.flatnonzero(ids == a)]
    x = r[[t for _, t in rows]] * w
    c = x - x.mean(0)
    e = c / np.linalg.norm(c, axis=1, keepdims=True)
    g = e @ e.T
    lab = np.array([k for k, _ in rows])
    n = len(common)
    s = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            block = g[np.ix_(lab == a, lab == b)]
            s[a, b] = (block.sum() - np.trace(block)) / (block.size - block.shape[0]) if a == b else block.mean()
    return s, g, lab

def main():
    out, paths = sys.argv[1], sys.argv[2:]
    scans = [load(p) for p in paths]
    sets = []
    for ids, _ in scans:
        u, c = np.unique(ids, return_counts=True)
        sets.append(set(u[c >= 2]))
    common = np.array(sorted(set.intersection(*sets)))
    w = np.load(f"{out}/w.npy")
    print("snr     max |neureg - numpy| =", np.abs(w - weights(*scans[0])).max())
    assert (np.load(f"{out}/oracle/image_ids.npy") == common).all()
    results = [oracle(ids, r, common) for ids, r in scans]
    for p, (s, _, _) in zip(paths, results):
        name = p.rsplit("/", 1)[-1].removesuffix(".zip")
        mine = np.load(f"{out}/oracle/{name}.npy")
        print(f"oracle  {name}: max |neureg - numpy| =", np.abs(mine - s).max())
    iu = np.triu_indices(len(common), 1)
    stack = np.stack([s[iu] for s, _, _ in results])
    dscan = (stack - stack.mean(0)).ravel()
    drep = []
    for s, g, lab in results:
        for a, b in zip(*iu):
            drep.append((g[np.ix_(lab == a, lab == b)] - s[a, b]).ravel())
    drep = np.concatenate(drep)
    v = json.load(open(f"{out}/v.json"))
    print("delta_scan   count", v["delta_scan"]["count"], len(dscan), " std", v["delta_scan"]["std"], dscan.std())
    print("delta_repeat count", v["delta_repeat"]["count"], len(drep), " std", v["delta_repeat"]["std"], drep.std())

if __name__ == "__main__":
    main()
