"""CLI sub-commands, one module per area; each exposes ``register(app)`` and is listed in ``flywheel.cli.COMMANDS``."""
