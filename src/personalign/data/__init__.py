"""Dataset schema, loaders, validation, splits and dataset cards.

The names most callers need are re-exported here::

    from personalign.data import load_dataset, grouped_splits, DatasetError
"""

from personalign.data.card import dataset_card
from personalign.data.errors import DatasetError
from personalign.data.loaders import load_dataset, save_dataset
from personalign.data.registry import DEFAULT_DATASET, DatasetInfo, list_datasets
from personalign.data.schema import Dataset, Record
from personalign.data.splits import grouped_splits, paper_splits
from personalign.data.validate import Issue, validate_dataset, validate_path

__all__ = [
    "DEFAULT_DATASET",
    "Dataset",
    "DatasetError",
    "DatasetInfo",
    "Issue",
    "Record",
    "dataset_card",
    "grouped_splits",
    "list_datasets",
    "load_dataset",
    "paper_splits",
    "save_dataset",
    "validate_dataset",
    "validate_path",
]
