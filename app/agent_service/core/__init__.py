"""Neutral building blocks every layer may use (circuit breaker, request context, the run's
principal, rate limiter, Redis clients, JSON form of LangGraph values). Nothing here imports a
package of the service above it; `tests/app/test_import_layers.py` holds that line."""
