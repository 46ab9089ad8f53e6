"""Example room types with server-side code (docs/room-code.md walks through them)."""
