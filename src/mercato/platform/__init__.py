"""Infrastructure shared by every module: database, unit of work, outbox, workers, HTTP plumbing."""
