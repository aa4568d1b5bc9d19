"""Disaster recovery: backup (pg_dump to S3), restore (verified, into an empty database),
retention (old threads and expired store items), and the drill that proves them together."""
