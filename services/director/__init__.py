"""The demo director: runs a scenario (YAML) chapter by chapter and narrates it."""
