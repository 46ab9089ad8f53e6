"""The pure protocol core: no Django, no asyncio, no I/O.

Parsing and validation of envelopes, merge patches and their composition,
room-type rules and room state transitions. Everything here is testable in
microseconds and reusable under any server.
"""
