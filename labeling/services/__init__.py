"""Labeling services: the queue (leases) and annotations (submit, skip, flag, undo)."""
