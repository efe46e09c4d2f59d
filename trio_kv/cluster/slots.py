"""Key -> hash slot: Redis Cluster's function, exactly.

``CRC16/XMODEM`` (polynomial 0x1021, initial value 0) of the key's hash tag,
modulo 16,384. The hash tag is the bytes between the first ``{`` and the
first ``}`` after it, when that is not empty; otherwise the whole key
(``{}{a}`` hashes ``{}{a}``, ``{a}{b}`` hashes ``a``). redis-py's
``redis.crc.key_slot`` is the test oracle.

``key_slot`` runs on every key a cluster node creates or deletes (per-slot
key counts), so it uses ``binascii.crc_hqx`` (the same CRC, in C: about
0.2 us a key instead of 2 us); ``crc16`` is the table-driven reference
the property tests compare it with.
"""

from __future__ import annotations

from binascii import crc_hqx

SLOT_COUNT = 16384


def _crc16_table() -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
        table.append(crc & 0xFFFF)
    return tuple(table)


_CRC16_TABLE = _crc16_table()


def crc16(data: bytes) -> int:
    """CRC16/XMODEM, as Redis' crc16.c."""
    crc = 0
    table = _CRC16_TABLE
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def hash_tag(key: bytes) -> bytes:
    """The part of ``key`` that decides its slot (see the module docstring)."""
    start = key.find(b"{")
    if start == -1:
        return key
    end = key.find(b"}", start + 1)
    if end == -1 or end == start + 1:
        return key
    return key[start + 1 : end]


def key_slot(key: bytes) -> int:
    """The hash slot (0..16383) of ``key``."""
    start = key.find(b"{")
    if start != -1:
        end = key.find(b"}", start + 1)
        if end > start + 1:
            return crc_hqx(key[start + 1 : end], 0) & (SLOT_COUNT - 1)
    return crc_hqx(key, 0) & (SLOT_COUNT - 1)
