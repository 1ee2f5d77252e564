"""Kafka wire-protocol server over the store (issue: wire server)."""
