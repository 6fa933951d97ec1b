"""Shared test helpers: fakes that speak real protocols, factories, process runners."""
