"""System of record: the tables (models.py), the engine and Alembic migrations (engine.py), and one
store module per aggregate (calls, callbacks, agents, auth, tickets, appointments, followups, complaints,
alerts, transcripts, interop, reports); docs/architecture.md lists them."""
