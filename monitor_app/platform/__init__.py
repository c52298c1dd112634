"""How dbmon runs: processes, the task ledger, queues, scan kinds, heartbeats, the event log."""
