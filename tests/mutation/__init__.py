"""Mutation testing for maintainers: ``python -m tests.mutation bot/limits.py`` (not part of CI)."""
