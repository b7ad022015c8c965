"""The thesis prefix cache's settings.

A group of its own because its keys mean other things than the block cache's: an exact match
on the first ``prefix_len`` tokens, capacity in prompts, session or global keys, and a hit that
skips the prefill or the whole request.
"""

from typing import Literal

from pydantic import Field

from kavier.settings.base import Settings, cli


class ThesisCacheSettings(Settings):
    """The thesis prefix cache (``prefix_cache = "thesis"``, the thesis preset's)."""

    table = "thesis_cache"
    panel = "Thesis prefix cache"

    prefix_len: int = Field(
        1024,
        ge=0,
        description="prompt tokens (count) that must match; 0 disables the cache",
        json_schema_extra=cli("--prefix_len"),
    )
    prefix_cache_size: int = Field(
        10, ge=1, description="capacity in prompts (count)", json_schema_extra=cli("--prefix_cache_size")
    )
    prefix_cache_scope: Literal["session", "global"] = Field(
        "session",
        description="session: a prefix matches within its session; global: across sessions",
        json_schema_extra=cli("--prefix_cache_scope"),
    )
    prefix_cache_policy: Literal["prefill", "full"] = Field(
        "prefill",
        description="a hit skips the prefill, or (full) the whole request",
        json_schema_extra=cli("--prefix_cache_policy"),
    )
