"""Values baked in by build_release.py; these are the unbuilt defaults."""

VERSION = "0.0.0"
FAIL_START = False
