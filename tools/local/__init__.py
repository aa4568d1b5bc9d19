"""The platform on one machine: PostgreSQL, Redis, an S3-compatible server and the agent
service as local processes under one supervisor, with their state in `.local/`."""
