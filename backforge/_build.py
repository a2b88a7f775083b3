"""hatchling build hook (not shipped in the wheel): writes `backforge/_version.py`.

It records the version (hatchling's, from backforge/versioning.py) and the commit: from git
when building a checkout, else (building from an sdist) the ones the sdist's `_version.py`
already holds.
"""

from __future__ import annotations

from importlib.util import module_from_spec, spec_from_file_location
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

VERSION_FILE = "backforge/_version.py"


class VersionFileHook(BuildHookInterface):  # type: ignore[misc]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        root = Path(self.root)
        spec = spec_from_file_location("_backforge_versioning", root / "backforge/versioning.py")
        if spec is None or spec.loader is None:
            raise OSError(f"cannot load {root / 'backforge/versioning.py'}")
        versioning = module_from_spec(spec)
        spec.loader.exec_module(versioning)
        target = root / VERSION_FILE
        commit = versioning.git_commit(root) or versioning.built_commit(target) or ""
        target.write_text(
            versioning.version_file_text(self.metadata.version, commit), encoding="utf-8"
        )
        build_data["artifacts"].append(f"/{VERSION_FILE}")
