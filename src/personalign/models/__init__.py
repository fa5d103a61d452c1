"""Encoder protocol, registry of known models and prompts, and backends."""
