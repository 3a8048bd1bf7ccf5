"""One package per independent process. Services never import each other;
what they share (process lifecycle, logging, settings) lives in ``services.runtime``."""
