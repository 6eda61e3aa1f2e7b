"""Every test imports the collection's Python (plugins/) by its importable name,
``ansible_collections.ollama_fleet.fleet.plugins...``, as Ansible does: collections/ links back
to the repository root (see ansible.cfg)."""

import pathlib
import sys

COLLECTIONS = pathlib.Path(__file__).resolve().parents[1] / "collections"
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))
