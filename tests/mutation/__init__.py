"""Mutation testing for maintainers: ``python -m tests.mutation bot/limits/quotas.py`` (not part of CI)."""
