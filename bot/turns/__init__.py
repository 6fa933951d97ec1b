"""Turns: their order, the one pipeline, the exclusive generation step, and recovery after restarts."""
