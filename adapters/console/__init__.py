"""The console adapter: a terminal conversation with the core."""
