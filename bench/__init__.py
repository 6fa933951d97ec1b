"""Benchmarks of the bot's own cost around the model: `python -m bench` (or `--quick`)."""
