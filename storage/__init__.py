"""Persistence for conversations, turns, image blobs, settings and usage."""
