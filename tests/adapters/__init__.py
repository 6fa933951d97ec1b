"""Tests of the platform adapters against protocol-faithful fakes."""
