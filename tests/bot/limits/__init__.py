"""Tests of bot.limits.quotas."""
