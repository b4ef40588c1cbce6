"""Database operations beside the migrations: schema compatibility, lint, backup and restore."""
