"""The driver layer: what runs in the sweep's driver process beside the runner loop."""
