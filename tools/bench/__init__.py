"""`make bench`: this service against LangGraph's own server (`langgraph dev`), same graphs,
same machine, one run; results in build/bench/ and docs/benchmarks.md."""
