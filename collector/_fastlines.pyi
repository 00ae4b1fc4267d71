from typing import Any

def lines(
    flat: list[Any],
    base: int,
    table: tuple[list[tuple[bytes, int, int, bytes, int, int, int] | None], int, int],
    overrides: list[tuple[int, str]] | None,
) -> str | None: ...
