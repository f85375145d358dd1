"""Top layer: composition root, cycle orchestration, deployment, jobs, simulation and the CLI."""
