"""Benchmarks of Kasagi Sync: the load tool, the tutorial-style baseline server and the comparison.

Nothing in the server imports this package; it only talks to servers over WebSockets.
"""
