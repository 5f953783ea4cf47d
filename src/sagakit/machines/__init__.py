"""Event-driven sagas: persistent state machines with correlated events and schedules."""
