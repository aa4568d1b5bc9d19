"""The run and lease domain: claim a thread, run its graph in a task of its own, record the
outcome. Raises domain errors (`runs.errors`); the API maps them to HTTP answers."""
