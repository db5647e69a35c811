"""Detector reference: the edge's drift detector recomputed independently
with numpy and scipy, on seeded random inputs.

spanwatch's detector (crates/core/src/detector.rs) maps each pair's
alignment, log change size, share outside the reference basis (off span)
and log pixel extent to a normal score through a table of calibration
quantiles (crates/calibrate/src/metric/drift.rs builds the table), then runs
six one-sided CUSUMs on residuals, clamped to +-6, each with its own
threshold (the crossing one the furthest past its threshold, sum /
threshold): the alignment and the size each given the other (their
correlation over the calibration pairs, rho: (z - rho z') / sqrt(1 -
rho^2)), the off span given both (its least-squares residual on them, at
unit variance), the extent alone (a wide and a narrow change). Here the same is done from the definitions: the
table's knots as order statistics at evenly spaced ranks with scipy's
normal quantiles of their plotting positions, the map with np.interp plus
linear tails, the off span's regression with np.linalg.lstsq on the
calibration scores, and the CUSUMs as a plain loop.

Output: tests/fixtures/detector/reference.json (inputs and expected values).
Run from the repository root:  python3 tests/reference/make_detector_fixtures.py
"""
import json
import pathlib

import numpy as np
from scipy.stats import norm

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "tests" / "fixtures" / "detector" / "reference.json"
MAX_KNOTS = 64
CAP = 6.0
MIN_SIZE = 1e-12
MIN_EXTENT = 1e-6


def table(values):
    """Knots (values, scores) and tail scale, as documented in drift.rs."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    n = len(v)
    m = min(n, MAX_KNOTS)
    ranks = np.array([int(np.floor(i * (n - 1) / (m - 1) + 0.5)) for i in range(m)])
    knots = v[ranks].astype(np.float32)
    scores = norm.ppf((ranks + 0.5) / n).astype(np.float32)
    at = lambda q: v[int(np.floor(q * (n - 1) + 0.5))]
    iqr = at(0.75) - at(0.25)
    tail = iqr / 1.349 if iqr > 0 else (v[-1] - v[0]) / float(scores[-1] - scores[0])
    return knots, scores, float(tail)


def score(x, knots, scores, tail):
    k, z = knots.astype(np.float64), scores.astype(np.float64)
    if np.isnan(x):
        return 0.0
    if x <= k[0]:
        s = z[0] - (k[0] - x) / tail
    elif x >= k[-1]:
        s = z[-1] + (x - k[-1]) / tail
    else:
        s = np.interp(x, k, z)
    return float(np.clip(s, -CAP, CAP))


def main():
    rng = np.random.default_rng(20261202)
    n_cal = 150
    cal_alignment = 0.12 + 0.05 * rng.standard_normal(n_cal)
    # The size is correlated with the alignment (as on the drawn brick tiles,
    # where larger changes align less), so the residuals matter.
    cal_log_size = 2.5 - 3.0 * (cal_alignment - 0.12) + 0.3 * rng.standard_t(5, n_cal)
    # The off span grows with the size (a larger change leaves more outside).
    cal_off_span = np.clip(0.25 + 0.1 * (cal_log_size - 2.5) + 0.05 * rng.standard_normal(n_cal), 0.0, 1.0)
    # The pixel extent: about 1.5% of the image, spread by a factor of 1.35.
    cal_log_extent = np.log(0.015) + 0.3 * rng.standard_normal(n_cal)
    ta, ts, to, te = table(cal_alignment), table(cal_log_size), table(cal_off_span), table(cal_log_extent)
    alignment_k, size_k, off_span_k, extent_k, clear_after = 0.5, 1.0, 1.0, 1.0, 12
    # One threshold per CUSUM (low alignment, small, large change, outside
    # span, wide, narrow change, outside span alone).
    thresholds = np.array([8.0, 5.5, 4.0, 4.5, 5.0, 6.0, 3.5])
    za_cal = np.array([score(x, *ta) for x in cal_alignment])
    zs_cal = np.array([score(x, *ts) for x in cal_log_size])
    zo_cal = np.array([score(x, *to) for x in cal_off_span])
    rho = float(np.clip(np.corrcoef(za_cal, zs_cal)[0, 1], -0.9, 0.9))
    scale = np.sqrt(1.0 - rho * rho)
    # The off span's residual on the standardized alignment and size scores
    # (least squares; its multiple correlation here is far below 0.9, so no
    # shrinkage), at unit variance.
    standard = lambda z: (z - z.mean()) / z.std()
    design = np.column_stack([standard(za_cal), standard(zs_cal)])
    beta, *_ = np.linalg.lstsq(design, standard(zo_cal), rcond=None)
    explained = 1.0 - np.var(standard(zo_cal) - design @ beta)
    assert explained < 0.81, explained
    off_row = np.array([-beta[0], -beta[1], 1.0]) / np.sqrt(1.0 - explained)
    rows = np.zeros((4, 4))
    rows[:3, :3] = [[1.0 / scale, -rho / scale, 0.0], [-rho / scale, 1.0 / scale, 0.0], off_row]
    rows[3, 3] = 1.0
    # A stream: 60 good pairs, 15 of the wrong family, 5 copies, 30 good,
    # 10 noisy, 40 good, 12 outside the span, 40 good, 10 changing most of
    # the image's pixels, 40 good, 12 a little larger and further outside
    # the span (the off span's own CUSUM, with the lower threshold, crosses
    # before its residual's), 40 good; each pair as (h = w.d, ||w||^2, ||d||^2,
    # ||B d||^2, pixel extent).
    w_norm2 = 4.0
    stream = []
    good_extent = lambda: float(np.exp(np.log(0.015) + 0.3 * rng.standard_normal()))
    def pair(alignment, log_size, off_span=None, extent=None):
        size = np.exp(log_size)
        if off_span is None:
            off_span = 0.25 + 0.1 * (log_size - 2.5) + 0.05 * rng.standard_normal()
        off_span = min(max(off_span, 0.0), 1.0)
        extent = good_extent() if extent is None else extent
        return alignment * np.sqrt(w_norm2) * size, w_norm2, size * size, size * size * (1.0 - off_span * off_span), extent
    good = lambda: pair(0.12 + 0.05 * rng.standard_normal(), 2.5 + 0.3 * rng.standard_normal())
    stream += [good() for _ in range(60)]
    stream += [pair(0.02 + 0.05 * rng.standard_normal(), 2.5 + 0.3 * rng.standard_normal()) for _ in range(15)]
    stream += [(0.0, w_norm2, 0.0, 0.0, 0.0) for _ in range(5)]
    stream += [good() for _ in range(30)]
    stream += [pair(0.0 + 0.05 * rng.standard_normal(), 4.0 + 0.3 * rng.standard_normal(), extent=0.9) for _ in range(10)]
    stream += [good() for _ in range(40)]
    stream += [pair(0.12 + 0.05 * rng.standard_normal(), 2.5 + 0.3 * rng.standard_normal(), 0.45 + 0.05 * rng.standard_normal()) for _ in range(12)]
    stream += [good() for _ in range(40)]
    stream += [pair(0.12 + 0.05 * rng.standard_normal(), 2.5 + 0.3 * rng.standard_normal(), extent=0.6) for _ in range(10)]
    stream += [good() for _ in range(40)]
    stream += [pair(0.12 + 0.05 * rng.standard_normal(), 2.8 + 0.1 * rng.standard_normal(), 0.36 + 0.02 * rng.standard_normal()) for _ in range(12)]
    stream += [good() for _ in range(40)]

    sums = np.zeros(7)
    quiet, raised = 0, False
    expected = []
    for hw, ww, dd, inside, extent in stream:
        nrm = np.sqrt(ww * dd)
        alignment = hw / nrm if nrm > 0 else 0.0
        log_size = np.log(max(np.sqrt(dd), MIN_SIZE))
        off_span = np.sqrt(max(1.0 - inside / dd, 0.0)) if dd > 0 else 0.0
        log_extent = np.log(max(extent, MIN_EXTENT))
        z = np.array([score(alignment, *ta), score(log_size, *ts), score(off_span, *to), score(log_extent, *te)])
        ra, rs, ro, re = np.clip(rows @ z, -CAP, CAP)
        evidence = np.array([-ra, -rs, rs, ro, re, -re, np.clip(z[2], -CAP, CAP)])
        sums = np.maximum(0.0, sums + evidence - np.array([alignment_k, size_k, size_k, off_span_k, extent_k, extent_k, off_span_k]))
        before = sums.copy()
        levels = before / thresholds
        change = None
        if levels.max() > 1.0:
            sums[:] = 0.0
            quiet = 0
            if not raised:
                raised, change = True, "raised"
        else:
            quiet += 1
            if raised and quiet >= clear_after:
                raised, change = False, "clear"
        watches = ["low_alignment", "small_change", "large_change", "outside_span", "wide_change", "narrow_change", "outside_span_alone"]
        crossed = watches[int(np.argmax(levels))] if levels.max() > 1.0 else None
        expected.append({"scores": z.tolist(), "sums": before.tolist(), "crossed": crossed, "change": change, "raised": raised})

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "calibration": {"alignment": cal_alignment.tolist(), "log_size": cal_log_size.tolist(), "off_span": cal_off_span.tolist(), "log_extent": cal_log_extent.tolist()},
        "tables": {
            "alignment": {"values": ta[0].tolist(), "scores": ta[1].tolist(), "tail": ta[2]},
            "log_size": {"values": ts[0].tolist(), "scores": ts[1].tolist(), "tail": ts[2]},
            "off_span": {"values": to[0].tolist(), "scores": to[1].tolist(), "tail": to[2]},
            "log_extent": {"values": te[0].tolist(), "scores": te[1].tolist(), "tail": te[2]},
        },
        "params": {
            "alignment_k": alignment_k, "size_k": size_k, "off_span_k": off_span_k, "extent_k": extent_k, "thresholds": thresholds.tolist(), "clear_after": clear_after,
            "correlation": rho, "residuals": rows.tolist(),
        },
        "stream": [list(p) for p in stream],
        "expected": expected,
    }, indent=1))
    raises = [t for t, e in enumerate(expected) if e["change"] == "raised"]
    crossings = [(t, e["crossed"]) for t, e in enumerate(expected) if e["crossed"]]
    print(f"wrote {OUT}: {len(stream)} pairs, rho {rho:.4f}, off-span row {off_row.round(4)}, raises at {raises}, crossings at {crossings}")


if __name__ == "__main__":
    main()
