"""Glue: settings, the local stack launcher and the ``oplab`` CLI. The only package that wires all others."""
