"""Interop with partner systems (12345, 12333, 12338) and the provincial command center: a durable
outbox delivered by its own daemon (`hotline interop`), signed requests, inbound tickets and status
updates, and a faithful 12345 simulator for tests and the demo."""
