"""How influxd 1.6 reads line protocol, rule for rule, so tests can say what it would store.

Written from the behaviour of influxd's scanner (models/points.go) and checked against a
real influxd 1.6.7 on a corpus (tests/lineproto/test_against_influxd.py). The scanner's
quirks are kept on purpose: an escape is "the byte before is a backslash" in some places and
"skip two bytes" in others, so a trailing backslash joins what follows, and a line only ends
at a newline that is neither escaped nor inside a string value. Pure: bytes in, points out.
"""

from __future__ import annotations

import codecs
import itertools
from dataclasses import dataclass

FieldValue = float | int | bool | str

BS, SP, COMMA, EQ, QUOTE, NL, TAB, HASH = b'\\ ,="\n\t#'
NUL = 0
MAX_KEY_LENGTH = 65535
MIN_NANO, MAX_NANO = -(2**63) + 2, 2**63 - 2
PRECISIONS = {"n": 1, "ns": 1, "u": 1000, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DIGITS = frozenset(b"0123456789")
_NUMERIC_START = frozenset(b"0123456789.-Nn")
_BOOLEANS = {b"t": True, b"T": True, b"true": True, b"True": True, b"TRUE": True,
             b"f": False, b"F": False, b"false": False, b"False": False, b"FALSE": False}


# Go (influxd's JSON answers) turns each byte of invalid UTF-8 into U+FFFD; Python's "replace"
# turns a cut-short sequence into one.
codecs.register_error("go-replace", lambda exc: ("\ufffd" * (exc.end - exc.start), exc.end))  # type: ignore[attr-defined]


def go_text(raw: bytes) -> str:
    return raw.decode("utf-8", "go-replace")


class ScanError(ValueError):
    """One block influxd refuses to parse; the message is influxd's own wording."""


class EngineError(ScanError):
    """A block the scanner passes but whose field value the storage engine cannot read (a key
    with an escaped backslash before `=` makes the scanner and the field iterator cut the
    fields differently). influxd answers 500 and stores none of the write's points in that
    shard: a producer retrying on 5xx would retry it forever."""

    def __init__(self, message: str, time: int | None) -> None:
        super().__init__(message)
        self.time = time


@dataclass(frozen=True, slots=True)
class RawPoint:
    """A parsed block, before influxd's storage rules (`time` keys, field types) apply."""

    measurement: bytes
    tags: tuple[tuple[bytes, bytes], ...]  # unescaped, sorted by key
    fields: tuple[tuple[bytes, FieldValue | None], ...]  # unescaped keys in line order; None: an empty value
    time: int | None  # in the write's precision, as written; None: the server's clock


def split_blocks(buf: bytes) -> list[bytes]:
    """The blocks influxd parses one by one: lines, where an escaped newline or one inside a
    quoted field value does not end the line. Empty, blank and comment blocks are included
    (the caller decides); a block's trailing newline is stripped as influxd strips it."""
    blocks = []
    pos = 0
    while pos < len(buf):
        end = _scan_line(buf, pos)
        block = buf[pos:end]
        pos = end + 1
        if block.endswith(b"\n"):
            block = block[:-1]
        blocks.append(block)
    return blocks


def _scan_line(buf: bytes, i: int) -> int:
    quoted = fields = False
    equals = commas = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == BS:  # skips the next byte whatever it is, a newline too
            i += 2
            continue
        if c == SP:
            fields = True
        if fields:
            if not quoted and c == EQ:
                equals += 1
                i += 1
                continue
            if not quoted and c == COMMA:
                commas += 1
                i += 1
                continue
            if c == QUOTE and equals > commas:
                quoted = not quoted
                i += 1
                continue
        if c == NL and not quoted:
            break
        i += 1
    return i


def skip_whitespace(buf: bytes, i: int) -> int:
    while i < len(buf) and buf[i] in (SP, TAB, NUL):
        i += 1
    return i


def parse_block(block: bytes, precision: str = "ms") -> RawPoint:
    """One non-blank, non-comment block, leading whitespace already skipped. Raises ScanError."""
    pos, key = _scan_key(block)
    if not key:
        raise ScanError("missing measurement")
    if len(key) > MAX_KEY_LENGTH:
        raise ScanError(f"max key length exceeded: {len(key)} > {MAX_KEY_LENGTH}")
    pos, fields = _scan_fields(block, pos)
    if not fields:
        raise ScanError("missing fields")
    pairs = _walk_fields(fields)
    for raw_key, _ in pairs:
        if len(key) + 4 + len(raw_key) > MAX_KEY_LENGTH:
            raise ScanError("max key length exceeded")
    pos, ts = _scan_time(block, pos)
    time: int | None = None
    if ts:
        time = _parse_int64(ts)
        nanos = time * PRECISIONS[precision]
        if not MIN_NANO <= nanos <= MAX_NANO:
            raise ScanError("time outside range")
        if any(b != SP for b in block[pos:]):
            raise ScanError("point is invalid")
    measurement, tags = _split_key(key)
    try:
        values = tuple((unescape(k), _field_value(v)) for k, v in pairs)
    except (ScanError, KeyError, IndexError):
        raise EngineError("engine: unable to parse a field value", time) from None
    return RawPoint(measurement, tags, values, time)


def _scan_key(buf: bytes) -> tuple[int, bytes]:
    i = 0
    tagged, i = _scan_measurement(buf, i)
    starts: list[int] = []
    if tagged:
        i, starts = _scan_tags(buf, i)
    count = len(starts) - 1 if starts else 0
    raw = [buf[starts[j]:starts[j + 1] - 1] for j in range(count)]
    names = [scan_to(tag, 0, EQ) for tag in raw]
    # influxd compares neighbours first and only sorts when they are out of order
    for left, right in itertools.pairwise(names):
        if left > right:
            break
        if left == right:
            raise ScanError("duplicate tags")
    else:
        return i, buf[:i]
    order = sorted(range(count), key=names.__getitem__)
    for a, b in itertools.pairwise(order):
        if names[a] == names[b]:
            raise ScanError("duplicate tags")
    return i, buf[:starts[0] - 1] + b"".join(b"," + raw[j] for j in order)


def _scan_measurement(buf: bytes, i: int) -> tuple[bool, int]:
    if i >= len(buf) or buf[i] == COMMA:
        raise ScanError("missing measurement")
    while True:
        i += 1
        if i >= len(buf):
            raise ScanError("missing fields")
        if buf[i - 1] == BS:
            continue
        if buf[i] == COMMA:
            return True, i + 1
        if buf[i] == SP:
            return False, i


def _scan_tags(buf: bytes, i: int) -> tuple[int, list[int]]:
    starts = []
    while True:
        starts.append(i)
        i = _scan_tag_key(buf, i)
        more, i = _scan_tag_value(buf, i)
        if not more:
            starts.append(i + 1)
            return i, starts


def _scan_tag_key(buf: bytes, i: int) -> int:
    if i >= len(buf) or buf[i] in (SP, COMMA, EQ):
        raise ScanError("missing tag key")
    while True:
        i += 1
        if i >= len(buf) or (buf[i] in (SP, COMMA) and buf[i - 1] != BS):
            raise ScanError("missing tag value")
        if buf[i] == EQ and buf[i - 1] != BS:
            return i + 1


def _scan_tag_value(buf: bytes, i: int) -> tuple[bool, int]:
    if i >= len(buf) or buf[i] in (COMMA, SP):
        raise ScanError("missing tag value")
    while True:
        i += 1
        if i >= len(buf):
            raise ScanError("missing fields")
        escaped = buf[i - 1] == BS
        if buf[i] == EQ and not escaped:
            raise ScanError("invalid tag format")
        if buf[i] == COMMA and not escaped:
            return True, i + 1
        if buf[i] == SP and not escaped:
            return False, i


def _scan_fields(buf: bytes, i: int) -> tuple[int, bytes]:
    start = i = skip_whitespace(buf, i)
    quoted = False
    equals = commas = 0
    n = len(buf)
    while i < n:
        c = buf[i]
        if c == BS and i + 1 < n:
            i += 2
            continue
        if c == QUOTE and equals > commas:
            quoted = not quoted
            i += 1
            continue
        if c == EQ and not quoted:
            equals += 1
            if buf[i - 1] in (SP, COMMA) and buf[i - 2] != BS:
                raise ScanError("missing field key")
            if i + 1 >= n or buf[i + 1] in (COMMA, SP):
                raise ScanError("missing field value")
            if buf[i + 1] in _NUMERIC_START:
                i = _scan_number(buf, i + 1)
                continue
            if buf[i + 1] != QUOTE:
                i = _scan_boolean(buf, i + 1)
                continue
        if c == COMMA and not quoted:
            commas += 1
        if c == SP and not quoted:
            break
        i += 1
    if quoted:
        raise ScanError("unbalanced quotes")
    if equals == 0 or commas != equals - 1:
        raise ScanError("invalid field format")
    return i, buf[start:i]


def _scan_number(buf: bytes, i: int) -> int:
    start = i
    n = len(buf)
    is_int = decimal = scientific = False
    if buf[i] == ord("-"):
        i += 1
        if i == n:
            raise ScanError("invalid number")
    while i < n and buf[i] not in (COMMA, SP):
        c = buf[i]
        if c in b"iu" and i > start and not is_int:
            if c == ord("u"):  # unsigned integers are off in influxd 1.6
                raise ScanError("invalid number")
            is_int = True
            i += 1
            continue
        if c == ord("."):
            if decimal:
                raise ScanError("invalid number")
            decimal = True
        if i > start and c in b"eE":
            scientific = True
            i += 1
            continue
        if c in b"+-" and buf[i - 1] in b"eE":
            i += 1
            continue
        if c not in _DIGITS and c != ord("."):
            raise ScanError("invalid number")
        i += 1
    if is_int and (decimal or scientific):
        raise ScanError("invalid number")
    digits = i - start - is_int - decimal - (buf[start] == ord("-"))
    if digits == 0:
        raise ScanError("invalid number")
    text = buf[start:i]
    if is_int:
        if text[-1] != ord("i"):
            raise ScanError("invalid number")
        if len(text) - 1 >= 19:
            _parse_int64(text[:-1])
    elif scientific or len(text) >= 25:
        _parse_float(text)
    return i


def _scan_boolean(buf: bytes, i: int) -> int:
    start = i
    while i < len(buf) and buf[i] not in (COMMA, SP):
        i += 1
    if buf[start:i] not in _BOOLEANS:
        raise ScanError("invalid boolean")
    return i


def _scan_time(buf: bytes, i: int) -> tuple[int, bytes]:
    start = i = skip_whitespace(buf, i)
    while i < len(buf) and buf[i] not in (NL, SP):
        if not (buf[i] in _DIGITS or (i == start and buf[i] == ord("-"))):
            raise ScanError("bad timestamp")
        i += 1
    return i, buf[start:i]


def _parse_int64(text: bytes) -> int:
    try:
        value = int(text.decode("ascii"), 10)
    except ValueError:
        raise ScanError(f"invalid integer {text!r}") from None
    if not -(2**63) <= value < 2**63 or text.startswith(b"+") or b"_" in text:
        raise ScanError(f"integer out of range {text!r}")
    return value


def _parse_float(text: bytes) -> float:
    try:
        value = float(text.decode("ascii"))
    except ValueError:
        raise ScanError("invalid float") from None
    if value - value != 0.0:  # an overflow is an error to Go's ParseFloat, and nan never gets here
        raise ScanError("invalid float")
    return value


def scan_to(buf: bytes, i: int, stop: int) -> bytes:
    """influxd's scanTo: up to the first `stop` whose previous byte is not a backslash."""
    start = i
    while i < len(buf) and not (buf[i] == stop and (i == 0 or buf[i - 1] != BS)):
        i += 1
    return buf[start:i]


def _walk_fields(fields: bytes) -> list[tuple[bytes, bytes]]:
    """(raw key, raw value) as influxd's field iterator cuts them."""
    pairs = []
    i = 0
    while i < len(fields):
        key = scan_to(fields, i, EQ)
        if i + len(key) > len(fields) - 2:  # no `=`, or nothing after it
            raise ScanError(f"invalid value: field-key={key.decode('utf-8', 'replace')}")
        i += len(key) + 1
        start = i
        quoted = False
        while i < len(fields):
            if fields[i] == BS and i + 1 < len(fields) and fields[i + 1] in (QUOTE, BS):
                i += 2
                continue
            if fields[i] == QUOTE:
                quoted = not quoted
            elif fields[i] == COMMA and not quoted:
                break
            i += 1
        pairs.append((key, fields[start:i]))
        i += 1
    return pairs


def _field_value(raw: bytes) -> FieldValue | None:
    if not raw:
        return None
    if raw[0] == QUOTE:
        return unescape_string(raw[1:-1])
    if raw[0] in b"0123456789-.nNiIu":
        if raw[-1] == ord("i"):
            return _parse_int64(raw[:-1])
        return _parse_float(raw)
    return _BOOLEANS[raw]


def unescape(raw: bytes) -> bytes:
    """Names: a backslash before a comma, double quote, space or equals sign is dropped."""
    if BS not in raw:
        return raw
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == BS and i + 1 < len(raw) and raw[i + 1] in b',"= ':
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return bytes(out)


def _unescape_tag(raw: bytes) -> bytes:
    """Tag keys and values: `\\,`, `\\ ` and `\\=` are replaced, one code after the other."""
    for code in (b"\\,", b"\\ ", b"\\="):
        raw = raw.replace(code, code[1:])
    return raw


def unescape_string(raw: bytes) -> str:
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == BS and i + 1 < len(raw) and raw[i + 1] in (BS, QUOTE):
            out.append(raw[i + 1])
            i += 2
            continue
        out.append(raw[i])
        i += 1
    return go_text(bytes(out))


def _split_key(key: bytes) -> tuple[bytes, tuple[tuple[bytes, bytes], ...]]:
    """The measurement and tags of a (sorted) series key, as influxd's walkTags reads them."""
    name = scan_to(key, 0, COMMA)
    tags = []
    i = len(name) + 1
    while i < len(key):
        tag_key = scan_to(key, i, EQ)
        i += len(tag_key) + 1
        start = i
        while i < len(key) and not (key[i] == COMMA and key[i - 1] != BS):
            i += 1
        value = key[start:i]
        i += 1
        if value:
            tags.append((_unescape_tag(tag_key), _unescape_tag(value)))
    return unescape(name), tuple(tags)
