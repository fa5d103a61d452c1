"""Dataset schema, loaders, validation, splits and dataset cards."""
