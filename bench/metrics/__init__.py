"""Metrics as pure functions of predictions and labels, the bootstrap, and per-set outcomes."""
