"""Where the shared reference specs live (the Bot API spec, Circle's OpenAPI spec).

They are read from `shared/reference/` beside the project, never copied into it:
$ITINERABOT_REFERENCE_DIR if set, else `shared/reference` beside any ancestor of this
checkout (a clone anywhere under the workspace), else the workspace's own copy.
"""

from __future__ import annotations

import os
from pathlib import Path

ENV = "ITINERABOT_REFERENCE_DIR"
_RELATIVE = Path("shared") / "reference"
_WORKSPACE = Path("/work") / _RELATIVE


def reference_dir() -> Path:
    """The folder holding telegram-bot-api.json and circle-openapi.json.

    Raises FileNotFoundError, naming what was tried, if there is none.
    """
    override = os.environ.get(ENV)
    if override:
        return Path(override)
    tried = []
    for parent in Path(__file__).resolve().parents:
        candidate = parent / _RELATIVE
        if candidate.is_dir():
            return candidate
        tried.append(str(candidate))
    if _WORKSPACE.is_dir():
        return _WORKSPACE
    raise FileNotFoundError(
        f"no shared/reference folder found (tried {', '.join(tried)} and {_WORKSPACE});"
        f" set ${ENV} to the folder holding telegram-bot-api.json"
    )
