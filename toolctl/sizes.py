"""Byte sizes as operators write them: ``16777216``, ``64MiB``, ``1.5 GB``, ``512k``.

Binary units (KiB, MiB, GiB, TiB, and the bare K, M, G, T as dd and sort read them) are
powers of 1024; decimal units (kB/KB, MB, GB, TB) powers of 1000; ``B`` or no unit is bytes.
Case does not matter. A fractional size is rounded down to whole bytes.
"""

from __future__ import annotations

import re

_UNITS = {"": 1, "b": 1,
          "k": 1024, "kib": 1024, "m": 1024 ** 2, "mib": 1024 ** 2,
          "g": 1024 ** 3, "gib": 1024 ** 3, "t": 1024 ** 4, "tib": 1024 ** 4,
          "kb": 1000, "mb": 1000 ** 2, "gb": 1000 ** 3, "tb": 1000 ** 4}
_SIZE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?|\.[0-9]+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """Bytes in ``text``; raises ValueError naming what is accepted."""
    m = _SIZE.fullmatch(text)
    unit = m.group(2).lower() if m else None
    if m is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: use bytes (16777216) or a number with a unit "
                         "(64MiB, 512KiB, 1GB, 16M)")
    number = m.group(1)
    if "." in number:
        whole, frac = number.split(".")
        return (int(whole or "0") * 10 ** len(frac) + int(frac)) * _UNITS[unit] // 10 ** len(frac)
    return int(number) * _UNITS[unit]


def format_size(n: int) -> str:
    """``n`` bytes in the largest binary unit that divides it (for help texts and messages)."""
    for unit in ("TiB", "GiB", "MiB", "KiB"):
        if n and n % _UNITS[unit.lower()] == 0:
            return f"{n // _UNITS[unit.lower()]}{unit}"
    return str(n)
