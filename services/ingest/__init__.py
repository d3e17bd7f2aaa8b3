"""Ingest: upload targets, verified session records and the sessions.uploaded event."""
