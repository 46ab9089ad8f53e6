"""The baseline server: what a Django developer writes without Kasagi (Channels tutorial style)."""
