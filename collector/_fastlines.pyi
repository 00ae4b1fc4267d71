from typing import Any

def lines(
    flat: list[Any],
    base: int,
    table: list[tuple[bytes, int, int, bytes] | None],
    overrides: list[tuple[int, str]] | None,
) -> str | None: ...
