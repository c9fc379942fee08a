"""Scoring: forward passes over stored sets, attacks, the logits cache, and one scored run."""
