"""The programs behind `agent-service <command>` (the table is in `agent_service.cli`): each
module reads its options, loads the settings through `commands.common` and calls the library
code that does the work (server, persistence, dr)."""
