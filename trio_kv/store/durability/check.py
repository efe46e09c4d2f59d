"""``trio-kv check-log PATH [--fix] [--yes]``: inspect one log or snapshot file.

Prints the file's kind, generation, record count, last good offset and the
problem found, if any. With ``--fix``, a log's torn tail is truncated at the
last good offset after a confirmation on stdin (``--yes`` skips it). Damage
before the tail is not "fixed": cutting there would drop the good records
after it, a decision for a person with a backup, not for this tool.

Exit status: 0 the file is clean, 1 it is damaged (whether fixed or not),
2 usage error (bad arguments, unreadable file).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TextIO

from .reader import CorruptLog, RecordReader, TornTail
from .records import KIND_LOG, RecordFormatError, decode_record
from .data_dir import FILE_NAME, truncate_file

EXIT_CLEAN = 0
EXIT_DAMAGED = 1
EXIT_USAGE = 2


@dataclass(slots=True)
class CheckResult:
    path: str
    file_size: int
    kind: str | None = None
    generation: int | None = None
    version: int | None = None
    records: int = 0
    effects: int = 0
    good_offset: int = 0
    torn: TornTail | None = None
    corrupt: CorruptLog | None = None

    @property
    def clean(self) -> bool:
        return self.torn is None and self.corrupt is None


def check_file(path: str | os.PathLike[str]) -> CheckResult:
    """Read the whole file, decoding every record. Raises OSError only. A
    file named ``log.N`` or ``snapshot.N`` must have that kind and generation
    in its header."""
    expect_kind = expect_generation = None
    match = FILE_NAME.fullmatch(os.path.basename(path))
    if match:
        expect_kind, expect_generation = match[1], int(match[2])
    try:
        reader = RecordReader(path, expect_kind=expect_kind, expect_generation=expect_generation)
    except CorruptLog as error:
        return CheckResult(error.path, os.path.getsize(path), corrupt=error)
    with reader:
        result = CheckResult(reader.path, reader.file_size)
        if reader.header is not None:
            result.kind = reader.header.kind
            result.generation = reader.header.generation
            result.version = reader.header.version
        # A reader without a header yields no records.
        version = 0 if reader.header is None else reader.header.version
        try:
            for offset, payload in reader:
                try:
                    result.effects += len(decode_record(payload, version))
                except RecordFormatError as error:
                    raise CorruptLog(reader.path, offset, str(error)) from None
                result.records += 1
        except CorruptLog as error:
            result.corrupt = error
        result.good_offset = reader.good_offset if result.corrupt is None else result.corrupt.offset
        result.torn = reader.torn
        return result


def format_result(result: CheckResult) -> str:
    lines = [
        f"file: {result.path}",
        f"kind: {result.kind or 'unknown'}",
        f"generation: {result.generation if result.generation is not None else 'unknown'}",
        f"format version: {result.version if result.version is not None else 'unknown'}",
        f"records: {result.records} ({result.effects} effects)",
        f"file size: {result.file_size} bytes",
        f"last good offset: {result.good_offset}",
    ]
    if result.corrupt is not None:
        lines.append(f"status: CORRUPT at offset {result.corrupt.offset}: {result.corrupt.reason}")
    elif result.torn is not None:
        lines.append(
            f"status: TORN TAIL at offset {result.torn.offset}: {result.torn.reason} "
            f"({result.file_size - result.torn.offset} bytes after the last good record)"
        )
    else:
        lines.append("status: ok")
    return "\n".join(lines)


def _confirm(question: str, stdin: TextIO, stdout: TextIO) -> bool:
    stdout.write(f"{question} [y/N] ")
    stdout.flush()
    return stdin.readline().strip().lower() in ("y", "yes")


def main(argv: Sequence[str] | None = None, *, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    parser = argparse.ArgumentParser(prog="trio-kv check-log", description="Check a trio_kv log or snapshot file.")
    parser.add_argument("path", help="the log.N or snapshot.N file to check")
    parser.add_argument("--fix", action="store_true", help="truncate a torn tail at the last good offset (asks first)")
    parser.add_argument("--yes", action="store_true", help="with --fix: do not ask for confirmation")
    args = parser.parse_args(argv)
    try:
        result = check_file(args.path)
    except OSError as error:
        print(f"trio-kv check-log: cannot read {args.path}: {error.strerror or error}", file=sys.stderr)
        return EXIT_USAGE
    stdout.write(format_result(result) + "\n")
    if result.clean:
        return EXIT_CLEAN
    if not args.fix:
        return EXIT_DAMAGED
    if result.corrupt is not None:
        stdout.write("not fixed: the damage is before the tail; cutting there would drop the records after it\n")
        return EXIT_DAMAGED
    if result.kind != KIND_LOG and result.kind is not None:
        stdout.write("not fixed: a damaged snapshot cannot be repaired by truncation\n")
        return EXIT_DAMAGED
    assert result.torn is not None
    question = f"Truncate {result.path} from {result.file_size} to {result.torn.offset} bytes?"
    if not args.yes and not _confirm(question, stdin, stdout):
        stdout.write("not fixed\n")
        return EXIT_DAMAGED
    truncate_file(result.path, result.torn.offset)
    stdout.write(f"truncated {result.path} to {result.torn.offset} bytes\n")
    return EXIT_DAMAGED
