"""The run driver: context, stages in order, events, checkpoints, devices, data."""
