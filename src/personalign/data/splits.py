"""Train / calibration / test splits.

Two procedures:

- ``grouped_splits`` (the corrected protocol, DESIGN.md §3): the unit is the *pair id*.
  Every language version of a pair, and every classification example built from it, lands
  in the same split, so no persona or instruction seen in training is ever evaluated.
- ``paper_splits`` (``--protocol paper``): the reference implementation's T4 split, which
  shuffles classification *examples* (positives and negatives separately) without any
  grouping; a persona, or the same pair in another language, can sit in train and test.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

SPLIT_NAMES: tuple[str, str, str] = ("train", "calib", "test")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    if len(fractions) != 3:
        raise ValueError(f"fractions must be (train, calib, test), got {tuple(fractions)!r}")
    fr = (float(fractions[0]), float(fractions[1]), float(fractions[2]))
    if any(f < 0 or math.isnan(f) for f in fr) or abs(sum(fr) - 1.0) > 1e-9:
        raise ValueError(
            f"fractions must be three non-negative numbers summing to 1, got {fr!r}"
        )
    return fr


def split_sizes(n: int, fractions: Sequence[float] = (0.7, 0.1, 0.2)) -> tuple[int, int, int]:
    """Exact split sizes for ``n`` items by the largest-remainder rule.

    Each size starts at ``floor(n * f_s)``; the ``n - sum(floors)`` items left over go one
    each to the splits with the largest fractional parts ``n * f_s - floor(n * f_s)`` (ties:
    train before calib before test). Sizes always sum to ``n`` and each differs from
    ``n * f_s`` by less than 1. Examples: n=150 -> (105, 15, 30); n=10 -> (7, 1, 2);
    n=3 -> (2, 0, 1).
    """
    fr = _check_fractions(fractions)
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    exact = [n * f for f in fr]
    # The relative tolerance makes 0.7 * 150 = 104.99999999999999 count as 105.
    sizes = [math.floor(x + 1e-9 * max(1.0, x)) for x in exact]
    left = n - sum(sizes)
    order = sorted(range(3), key=lambda s: (-(exact[s] - sizes[s]), s))
    for s in order[:left]:
        sizes[s] += 1
    return sizes[0], sizes[1], sizes[2]


def grouped_splits(
    pair_ids: Iterable[str],
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 42,
) -> dict[str, str]:
    """Assign every pair id to "train", "calib" or "test".

    Procedure (deterministic for a given set of ids and seed, whatever their order or
    repetition): ``ids = sorted(set(pair_ids))`` (string order), ``perm =
    numpy.random.default_rng(seed).permutation(len(ids))``; the first ``n_train`` ids of
    ``ids[perm]`` are train, the next ``n_calib`` calib, the rest test, with sizes from
    ``split_sizes`` (largest-remainder rounding, so they sum exactly to the number of ids).

    Pass the ids of *all* languages together (``Dataset.pair_ids()``): the assignment is
    per pair id, so a pair is in the same split in every language.
    """
    ids = sorted(set(pair_ids))
    n_train, n_calib, _ = split_sizes(len(ids), fractions)
    perm = np.random.default_rng(seed).permutation(len(ids))
    out: dict[str, str] = {}
    for rank, index in enumerate(perm.tolist()):
        if rank < n_train:
            out[ids[index]] = "train"
        elif rank < n_train + n_calib:
            out[ids[index]] = "calib"
        else:
            out[ids[index]] = "test"
    return out


def split_counts(assignment: dict[str, str]) -> dict[str, int]:
    """Number of ids per split, in ``SPLIT_NAMES`` order (splits with 0 ids included)."""
    counts = dict.fromkeys(SPLIT_NAMES, 0)
    for split in assignment.values():
        counts[split] = counts.get(split, 0) + 1
    return counts


def paper_splits(
    labels: Sequence[int] | np.ndarray,
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 42,
) -> dict[str, np.ndarray]:
    """The reference implementation's T4 split of classification examples.

    Reproduces the split written inline in the T4 branch of ``src/runner.py`` of
    aryashah2k/PI-Indic-Align (commit a7d6877f5ddff2ba8557e2651ebea30a6e23eec0; configs
    ``configs/prod_t4.yaml``: seed 42, 70/10/20). ``src/splits.py``'s ``random_split`` is
    imported there but not used by T4. The procedure, on examples ``0..N-1`` with binary
    ``labels`` (1 = gold pair, 0 = negative):

    1. ``rng = numpy.random.RandomState(seed)`` (the legacy generator, whose stream numpy
       keeps fixed across versions);
    2. ``pos = where(labels == 1)``, ``neg = where(labels == 0)`` (ascending indices);
       ``rng.shuffle(pos)``; ``rng.shuffle(neg)``;
    3. each of ``pos`` and ``neg`` is cut with truncation: ``n_train = int(f_train * n)``,
       ``n_dev = int(f_dev * n)``, the rest is test (so test gets the rounding surplus);
    4. ``train = concat(pos_train, neg_train)``, likewise dev and test; then
       ``rng.shuffle(train)``, ``rng.shuffle(dev)``, ``rng.shuffle(test)`` in that order.

    Returned as ``{"train": idx, "calib": idx, "test": idx}`` (int64 index arrays in the
    reference's final row order); "calib" is the reference's "dev" split. Examples are not
    grouped: the same persona (as positive and as the query of negatives) and the same pair
    in other languages fall in different splits, which leaks personas into test.

    To reproduce the reference's numbers, ``labels`` must list examples in its order: all
    positives first (languages in sorted code order, records in file order), then the mined
    negatives (per language, per query in file order). The reference hard-codes the test
    share as the remainder, so only ``fractions[0]`` and ``fractions[1]`` are used after
    checking that the three sum to 1.
    """
    fr = _check_fractions(fractions)
    y = np.asarray(labels)
    if y.ndim != 1 or not np.isin(y, (0, 1)).all():
        raise ValueError("labels must be a 1-d sequence of 0/1 values")
    rng = np.random.RandomState(seed)
    pos = np.where(y == 1)[0]
    neg = np.where(y == 0)[0]
    rng.shuffle(pos)
    rng.shuffle(neg)

    def cut(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(arr)
        n_train = int(fr[0] * n)
        n_dev = int(fr[1] * n)
        return arr[:n_train], arr[n_train:n_train + n_dev], arr[n_train + n_dev:]

    p_train, p_dev, p_test = cut(pos)
    n_train, n_dev, n_test = cut(neg)
    train = np.concatenate([p_train, n_train]).astype(np.int64)
    dev = np.concatenate([p_dev, n_dev]).astype(np.int64)
    test = np.concatenate([p_test, n_test]).astype(np.int64)
    rng.shuffle(train)
    rng.shuffle(dev)
    rng.shuffle(test)
    return {"train": train, "calib": dev, "test": test}


def split_per_row(split_indices: dict[str, np.ndarray], n: int) -> np.ndarray:
    """Turn ``{"train": idx, ...}`` (e.g. from ``paper_splits``) into an array of ``n`` split
    names, one per row. Raises ValueError if a row is in no split or in two."""
    out = np.full(n, "", dtype=object)
    for name, idx in split_indices.items():
        if (out[idx] != "").any():
            raise ValueError(f"rows assigned twice (split {name!r})")
        out[idx] = name
    if (out == "").any():
        raise ValueError(f"{int((out == '').sum())} rows are in no split")
    return out
