"""Batch jobs that write indexes: loaders, crawler, build/status/eval command line."""
