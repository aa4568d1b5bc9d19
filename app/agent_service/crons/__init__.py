"""Crons: run payloads fired on a schedule (croniter), each firing once across replicas."""
