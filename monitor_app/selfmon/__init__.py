"""dbmon watching itself.

- `components`: heartbeat rows (`component_heartbeats`) each worker, beat, the watcher and its
  sources, and API processes write about themselves, and how a reader judges them.
- `reporters`, `process_hooks`, `watcher_report`: the writing side, called from each process's loop.
- `queues`, `failures`: backlog and lag per queue (ledger and broker), recent task failure ratio.
- `liveness`: verdicts on the rows (queue consumers, beat, leading watcher, watch sources).
- `snapshot`: `take_snapshot(store, settings)`, the whole picture (`GET /api/v1/system`), and
  `component_health(store)`, the verdicts alone (`/healthz`).
- `check`, `series`, `deadman`: the `selfmon.check` task's work: the `dbmon` asset's series the
  built-in rules read, and the dead-man's switch.
"""
