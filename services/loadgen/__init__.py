"""The load generator: realistic client traffic on the subject, reported as ``workload.stats``."""
