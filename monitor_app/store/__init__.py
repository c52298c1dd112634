"""dbmon's own store: SQLAlchemy models, sessions and Alembic migrations."""

from monitor_app.store.base import Base, Store, utcnow

__all__ = ["Base", "Store", "utcnow"]
