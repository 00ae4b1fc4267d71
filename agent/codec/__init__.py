"""Pure codecs of the field-bus drivers: bytes and registers in, typed values out.

Nothing here does I/O or imports asyncio, so every rule is tested with tables.
"""
