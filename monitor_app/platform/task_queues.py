"""The queues, and which queue a task belongs on (by its name's first part)."""

QUEUES = ("discovery", "schema", "posture", "files", "metrics", "alerts", "maintenance")

_PREFIX_QUEUE = {
    "assets": "discovery",
    "containers": "discovery",
    "schema": "schema",
    # Its own queue: a day's (or a start-up's) posture checks of a thousand databases must not
    # hold up the schema check a DDL notification asked for behind them.
    "posture": "posture",
    "files": "files",
    "metrics": "metrics",
    "alerts": "alerts",
    "maintenance": "maintenance",
    "selfmon": "maintenance",
}


def queue_for(task_name: str) -> str:
    prefix = task_name.split(".", 1)[0]
    try:
        return _PREFIX_QUEUE[prefix]
    except KeyError:
        raise ValueError(f"no queue for task {task_name!r}; add its prefix to task_queues") from None
