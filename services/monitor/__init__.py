"""The monitor: observes the subject, judges invariants, opens and self-heals tickets."""
