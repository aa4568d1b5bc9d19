"""The one process kit shared by the tools and the tests: where the repository and its programs
are, free loopback ports, starting a process and waiting until it is ready, throw-away
PostgreSQL/Redis/S3 servers, rendering and validating the chart, a closed-loop load generator."""
