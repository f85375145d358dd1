"""Bottom layer: settings, domain types, ports, the error tree and the offline runtime guard.

Imports no other project package (checked by import-linter in the test command).
"""
