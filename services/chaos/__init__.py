"""The chaos service: injects faults on command, proves them, and always reverts them."""
