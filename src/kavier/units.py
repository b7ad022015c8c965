"""Unit constants. Everything inside Kavier is SI (s, B, FLOP, J, W, g); convert only at the edges."""

from __future__ import annotations

KIB = 1024
MIB = 1024**2
GIB = 1024**3
GB = 1e9
TERA = 1e12
MS_PER_S = 1000.0
S_PER_HOUR = 3600.0
J_PER_KWH = 3.6e6
J_PER_WH = 3600.0
