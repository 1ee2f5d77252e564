"""Kafka transactions on the embedded store (issue: transactions). Imports logstore only."""
