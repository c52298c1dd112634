"""Celery app, thin task wrappers and the watcher process."""
