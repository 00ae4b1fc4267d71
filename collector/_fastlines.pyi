from typing import Any

def lines(
    flat: list[Any],
    base: int,
    table: tuple[list[tuple[bytes, bytes, bytes] | None], int, int],
    overrides: list[tuple[int, str]] | None,
) -> str | None: ...
