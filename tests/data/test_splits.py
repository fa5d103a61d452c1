import numpy as np
import pytest

from personalign.data.schema import Dataset, Record
from personalign.data.splits import (
    grouped_splits,
    paper_splits,
    split_counts,
    split_per_row,
    split_sizes,
)


@pytest.mark.parametrize(
    ("n", "expected"),
    [(0, (0, 0, 0)), (3, (2, 0, 1)), (7, (5, 1, 1)), (10, (7, 1, 2)), (150, (105, 15, 30)),
     (600_000, (420_000, 60_000, 120_000))],
)
def test_split_sizes_largest_remainder(n: int, expected: tuple[int, int, int]) -> None:
    # n=7: exact 4.9 / 0.7 / 1.4 -> floors 4 / 0 / 1, two left over go to the largest
    # remainders (train .9, calib .7) -> 5 / 1 / 1.
    assert split_sizes(n) == expected


def test_split_sizes_always_sum_to_n() -> None:
    for n in range(0, 300):
        sizes = split_sizes(n, (0.6, 0.15, 0.25))
        assert sum(sizes) == n
        assert all(abs(s - n * f) < 1 for s, f in zip(sizes, (0.6, 0.15, 0.25), strict=True))


@pytest.mark.parametrize("fractions", [(0.7, 0.1), (0.7, 0.2, 0.2), (1.2, -0.1, -0.1)])
def test_bad_fractions_rejected(fractions: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="fractions"):
        grouped_splits(["a", "b"], fractions)


def test_grouped_splits_sizes_and_complete() -> None:
    ids = [f"p{i:03d}" for i in range(150)]
    assignment = grouped_splits(ids)
    assert set(assignment) == set(ids)
    assert split_counts(assignment) == {"train": 105, "calib": 15, "test": 30}


def test_grouped_splits_pinned_assignment() -> None:
    # Pins the documented procedure (sorted ids, default_rng(42).permutation): a change
    # here silently changes every published split.
    assignment = grouped_splits([str(i) for i in range(10)], seed=42)
    ids = sorted(str(i) for i in range(10))
    perm = [ids[j] for j in np.random.default_rng(42).permutation(10)]
    assert [assignment[p] for p in perm] == ["train"] * 7 + ["calib"] + ["test"] * 2
    assert assignment == {
        "0": "train", "1": "test", "2": "train", "3": "train", "4": "train",
        "5": "train", "6": "train", "7": "train", "8": "test", "9": "calib",
    }


def test_grouped_splits_deterministic_and_order_free() -> None:
    ids = [f"id-{i}" for i in range(40)]
    first = grouped_splits(ids, seed=7)
    again = grouped_splits(list(reversed(ids)) + ids[:5], seed=7)  # order and repeats
    assert first == again
    assert grouped_splits(ids, seed=8) != first


def _parallel_dataset(n_pairs: int, langs: list[str]) -> Dataset:
    records = [Record(f"q{i}", lang, f"persona {i}", f"instruction {i}")
               for lang in langs for i in range(n_pairs)]
    return Dataset("toy", records)


def test_grouped_splits_keep_pairs_together_across_languages() -> None:
    ds = _parallel_dataset(30, ["hin_Deva", "tam_Taml", "eng_Latn"])
    assignment = grouped_splits(ds.pair_ids())
    by_split: dict[str, set[str]] = {}
    for r in ds.records:
        by_split.setdefault(assignment[r.pair_id], set()).add(r.pair_id)
    assert by_split["train"].isdisjoint(by_split["test"])
    assert by_split["train"].isdisjoint(by_split["calib"])
    assert by_split["calib"].isdisjoint(by_split["test"])
    # 30 pairs -> 21 / 3 / 6 pairs, each present in all three languages
    assert [len(by_split[s]) for s in ("train", "calib", "test")] == [21, 3, 6]


def test_paper_splits_stratified_truncation() -> None:
    labels = np.array([1] * 10 + [0] * 25)
    parts = paper_splits(labels)
    # positives: int(7.0)=7 / int(1.0)=1 / 2 ; negatives: int(17.5)=17 / int(2.5)=2 / 6
    assert [int(labels[parts[s]].sum()) for s in ("train", "calib", "test")] == [7, 1, 2]
    assert [len(parts[s]) for s in ("train", "calib", "test")] == [24, 3, 8]
    rows = split_per_row(parts, len(labels))
    assert sorted(set(rows)) == ["calib", "test", "train"]


def test_paper_splits_follow_the_reference_rng_sequence() -> None:
    labels = [1, 0, 1, 0, 1, 0, 1, 0, 1, 0]
    # By hand from the reference procedure with numpy's legacy RandomState(42).
    rng = np.random.RandomState(42)
    pos, neg = np.array([0, 2, 4, 6, 8]), np.array([1, 3, 5, 7, 9])
    rng.shuffle(pos)
    rng.shuffle(neg)
    train = np.concatenate([pos[:3], neg[:3]])
    calib = np.concatenate([pos[3:3], neg[3:3]])
    test = np.concatenate([pos[3:], neg[3:]])
    rng.shuffle(train)
    rng.shuffle(calib)
    rng.shuffle(test)
    got = paper_splits(labels, seed=42)
    assert got["train"].tolist() == train.tolist()
    assert got["calib"].tolist() == calib.tolist() == []
    assert got["test"].tolist() == test.tolist()
    assert got["train"].tolist() == [7, 8, 2, 3, 5, 4]  # pinned
    assert got["test"].tolist() == [0, 6, 1, 9]


def test_paper_split_leaks_pairs_that_grouped_split_keeps_apart() -> None:
    # 40 pairs x 3 languages of positives: the paper split scatters a pair's language
    # versions over splits; the grouped split never does.
    pair_of_row = [f"q{i}" for _ in range(3) for i in range(40)]
    parts = paper_splits(np.ones(len(pair_of_row), dtype=int))
    train = {pair_of_row[i] for i in parts["train"]}
    test = {pair_of_row[i] for i in parts["test"]}
    assert train & test
    grouped = grouped_splits(pair_of_row)
    assert not ({p for p in pair_of_row if grouped[p] == "train"}
                & {p for p in pair_of_row if grouped[p] == "test"})


def test_split_per_row_rejects_gaps_and_overlaps() -> None:
    with pytest.raises(ValueError, match="no split"):
        split_per_row({"train": np.array([0])}, 2)
    with pytest.raises(ValueError, match="twice"):
        split_per_row({"train": np.array([0, 1]), "test": np.array([1])}, 2)
