"""Where the index lives when no -o/--index is given, so `soundtok search` needs no flag."""

from __future__ import annotations

import os


def default_index_path() -> str:
    """``$SOUNDTOK_INDEX``, else ``$XDG_DATA_HOME/soundtok/index``, else
    ``~/.local/share/soundtok/index``."""
    explicit = os.environ.get("SOUNDTOK_INDEX")
    if explicit:
        return explicit
    data_home = os.environ.get("XDG_DATA_HOME", "")
    if not os.path.isabs(data_home):  # the XDG spec: relative values are to be ignored
        data_home = os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data_home, "soundtok", "index")
