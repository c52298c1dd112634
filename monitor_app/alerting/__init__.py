"""Alerting: rules turn events and metric samples into alerts, alerts group into
incidents, incidents become notification rows in a durable outbox that channels deliver."""
