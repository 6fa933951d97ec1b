"""Tests of bot.images.checks."""
