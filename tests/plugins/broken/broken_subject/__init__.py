"""A subject package that fails to import (tests only)."""
