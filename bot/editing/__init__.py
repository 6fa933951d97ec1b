"""The region editor: signed single-use links, the web page people paint on, and its routes."""
