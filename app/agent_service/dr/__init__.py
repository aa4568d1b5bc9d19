"""Disaster recovery: backup (pg_dump to S3) and restore (verified, into an empty database),
run by `agent-service backup|restore` (`agent_service.commands`)."""
