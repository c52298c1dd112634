"""dbmon domain core: settings, store and the monitoring logic, free of Celery and Flask."""
