"""Drills: a workload run against a live fleet under injected faults, recorded as a
history of operations and judged afterwards (linearizability and other invariants)."""
