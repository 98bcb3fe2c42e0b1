"""Statistics behind the checks: pure functions on arrays, each unit-tested against known answers."""
