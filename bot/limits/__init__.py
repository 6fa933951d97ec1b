"""Limits: per-person, per-channel and per-workspace image limits, the spend cap, and usage reports."""
