"""Both stores (SQLite and a real PostgreSQL) and the coordination across processes."""
