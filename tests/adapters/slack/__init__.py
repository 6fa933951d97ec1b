"""Slack: the real slack-bolt against a fake Web API and Socket Mode."""
