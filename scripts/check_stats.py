"""Reference values for neureg's paired statistics, from scipy and statsmodels.

Writes tests/fixtures/paired_stats.json, which `cargo test --test statistics` compares with
neureg's own numbers: for seeded random paired differences of 2 to 16 seeds, scipy's
`ttest_rel` (t-test p and its 95% confidence interval) and `permutation_test` with
`permutation_type='samples'` over every sign pattern (the exact sign-flip p of the mean),
statsmodels' `TTestPower` (the power at the observed effect size and the fewest seeds with 80%),
and `multipletests(method='holm')` over each case's p-values.

    pip install numpy scipy statsmodels
    python3 scripts/check_stats.py tests/fixtures/paired_stats.json
"""
import json
import math
import sys

import numpy as np
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower


def case(d):
    d = np.asarray(d, dtype=float)
    n = len(d)
    t = stats.ttest_rel(d, np.zeros(n))
    ci = t.confidence_interval(0.95)
    perm = stats.permutation_test(
        (d,), np.mean, permutation_type="samples", n_resamples=2**n, alternative="two-sided"
    )
    sd = d.std(ddof=1)
    effect = d.mean() / sd if sd > 0 else float("nan")
    power = TTestPower()
    at_n = power.power(abs(effect), n, 0.05) if sd > 0 else float("nan")
    # The fewest seeds (from 2) whose power reaches 80%, by statsmodels' power function
    # (its solve_power fails to converge below n = 2).
    need = None
    if sd > 0 and abs(effect) > 0.05:
        for m in range(2, 10001):
            p = power.power(abs(effect), m, 0.05)
            if math.isnan(p):
                break  # statsmodels fails here (one degree of freedom, large effects)
            if p >= 0.8:
                need = m
                break
    return {
        "differences": d.tolist(),
        "t_p": float(t.pvalue),
        "interval": [float(ci.low), float(ci.high)],
        "p": float(perm.pvalue),
        "effect": None if math.isnan(effect) else float(effect),
        "power": None if math.isnan(at_n) else float(at_n),
        "seeds_for_power": need,
    }


def main(out):
    rng = np.random.default_rng(2026)
    cases = []
    for k in range(60):
        n = 2 + k % 15
        shift = rng.choice([0.0, 0.01, 0.03])
        d = np.round(rng.normal(shift, 0.02, n), 4)
        cases.append(case(d))
    ps = [c["p"] for c in cases[:12]]
    holm = multipletests(ps, method="holm")[1].tolist()
    with open(out, "w") as f:
        # Undefined values (NaN) are written as null, which JSON has.
        json.dump({"cases": cases, "holm": {"p": ps, "adjusted": holm}}, f, indent=1, allow_nan=False)
    print(f"{out}: {len(cases)} cases")


main(sys.argv[1] if len(sys.argv) > 1 else "tests/fixtures/paired_stats.json")
