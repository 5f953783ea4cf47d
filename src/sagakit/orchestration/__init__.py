"""Orchestrated sagas: definitions (Saga, Step, Retry), the engine, and how steps are called."""
