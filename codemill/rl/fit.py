"""ScaleRL's compute-performance curve: R(C) = A / (1 + (C_mid / C)^B) (arXiv 2510.13786).

``A`` is the asymptotic pass rate, ``B`` the scaling exponent (efficiency), ``C_mid`` the
compute at which half of ``A`` is reached. Fitted by least squares in numpy only (scipy
is not a codemill dependency): for fixed ``(B, C_mid)`` the best ``A`` has a closed form,
so a coarse grid over ``(B, log C_mid)`` followed by a finer grid around the best cell
finds the optimum deterministically. As ScaleRL does, the earliest points (the noisy
start) are left out: ``skip`` of them, after dropping points with no compute yet.
"""

from __future__ import annotations

import numpy as np


def sigmoid(c: np.ndarray, a: float, b: float, c_mid: float) -> np.ndarray:
    c = np.asarray(c, dtype=np.float64)
    return a / (1.0 + (c_mid / np.maximum(c, 1e-300)) ** b)


def _best_a(f: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Least-squares A for each candidate curve shape (rows of f), kept in [0, 1]."""
    a = (f * r).sum(axis=-1) / np.maximum((f * f).sum(axis=-1), 1e-300)
    return np.clip(a, 0.0, 1.0)


def _search(c: np.ndarray, r: np.ndarray, bs: np.ndarray, log_mids: np.ndarray):
    b, m = np.meshgrid(bs, log_mids, indexing="ij")
    f = 1.0 / (1.0 + (np.exp(m)[..., None] / c) ** b[..., None])  # [nb, nm, n]
    a = _best_a(f, r)
    sse = ((a[..., None] * f - r) ** 2).sum(axis=-1)
    i, j = np.unravel_index(np.argmin(sse), sse.shape)
    return float(a[i, j]), float(bs[i]), float(np.exp(log_mids[j])), float(sse[i, j])


def fit(compute: list[float], pass_rate: list[float], min_points: int = 4, skip: int = 0) -> dict | None:
    """``{"A", "B", "C_mid", "rmse", "points"}`` or None when fewer than ``min_points`` remain."""
    pts = sorted((float(c), float(r)) for c, r in zip(compute, pass_rate) if c > 0 and np.isfinite(r))[skip:]
    if len(pts) < max(3, min_points):
        return None
    c = np.array([p[0] for p in pts])
    r = np.array([p[1] for p in pts])
    lo, hi = np.log(c.min()) - 3.0, np.log(c.max()) + 6.0
    a, b, mid, sse = _search(c, r, np.geomspace(0.05, 10.0, 60), np.linspace(lo, hi, 120))
    step_b, step_m = b * 0.12, (hi - lo) / 119
    a, b, mid, sse = _search(
        c,
        r,
        np.linspace(max(b - step_b, 1e-3), b + step_b, 41),
        np.linspace(np.log(mid) - step_m, np.log(mid) + step_m, 41),
    )
    return {"A": a, "B": b, "C_mid": mid, "rmse": float(np.sqrt(sse / len(pts))), "points": len(pts)}


def plot(compute: list[float], pass_rate: list[float], result: dict | None, path: str, xlabel: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(compute, pass_rate, "o", label="held-out pass rate")
    if result:
        xs = np.geomspace(max(min(c for c in compute if c > 0), 1e-9), max(compute) * 4, 200)
        ax.plot(
            xs,
            sigmoid(xs, result["A"], result["B"], result["C_mid"]),
            "-",
            label=f"A={result['A']:.3f} B={result['B']:.2f} C_mid={result['C_mid']:.3g}",
        )
        ax.axhline(result["A"], ls=":", color="gray")
    ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("pass rate")
    ax.set_ylim(0, 1.02)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
