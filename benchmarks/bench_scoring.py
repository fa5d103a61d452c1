"""Blocked gold-rank scoring at full scale: one 50,000 x 50,000 language pair.

Reports wall time and peak extra memory (tracemalloc sees numpy's allocations) for a
random 384-d (mE5-small size) or 1024-d pair. The full score matrix would need
50,000^2 * 4 bytes = 9.3 GiB; the blocked scorer needs one block (default 64 MiB).

    python benchmarks/bench_scoring.py --n 50000 --dim 384
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from personalign.scoring import gold_ranks, l2_normalise


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--memory-mb", type=float, default=64.0)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    q = l2_normalise(rng.standard_normal((args.n, args.dim), dtype=np.float32))
    c = l2_normalise(q + 0.5 * rng.standard_normal((args.n, args.dim), dtype=np.float32))
    tracemalloc.start()
    t0 = time.perf_counter()
    res = gold_ranks(q, c, np.arange(args.n), memory_mb=args.memory_mb)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    full_gib = args.n * args.n * 4 / 2**30
    print(f"n={args.n} dim={args.dim} block={args.memory_mb} MiB: {elapsed:.1f} s, "
          f"peak extra memory {peak / 2**20:.0f} MiB (full matrix would be {full_gib:.1f} GiB), "
          f"R@1={float((res.rank <= 1).mean()):.3f}")


if __name__ == "__main__":
    main()
