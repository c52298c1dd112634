"""Development and CI tooling; not part of the installed dbmon package."""
