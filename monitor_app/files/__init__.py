"""File monitoring: what dbmon watches on disk (data, WAL, configs, logs, backups), the baseline
it keeps of each path, the changes it reports, config diffs and backup checks."""
