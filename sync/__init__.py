"""Kasagi Sync engine: the pure core (``sync.core``), stores, hub and consumer."""
