"""Run specs: the pydantic models, loading with one report of every problem, and the JSON Schema."""
