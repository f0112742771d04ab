"""System of record: SQLAlchemy models, the async store, Alembic migrations."""
