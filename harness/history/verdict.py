"""What every checker returns: valid or not, counts, and the problems found.

``problems`` are readable paragraphs that quote the history's own JSON lines
(``jsonl.op_line``), so a report can be grepped back to the saved history.
``counts`` are the numbers a test asserts on (``lost``, ``present``, ...),
and prove a passing check actually had material to judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Problems beyond this many are counted, not printed.
MAX_REPORTED_PROBLEMS = 20


@dataclass
class Verdict:
    checker: str
    valid: bool
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    # Anything else worth printing (a timing, keys left undecided).
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        counts = ", ".join(f"{name}={value}" for name, value in self.counts.items())
        return f"{self.checker}: {'valid' if self.valid else 'INVALID'} ({counts})"

    def report(self) -> str:
        lines = [self.summary(), *(f"  note: {note}" for note in self.notes)]
        for problem in self.problems[:MAX_REPORTED_PROBLEMS]:
            lines.append("  " + problem.replace("\n", "\n    "))
        if len(self.problems) > MAX_REPORTED_PROBLEMS:
            lines.append(f"  ... and {len(self.problems) - MAX_REPORTED_PROBLEMS} more problems")
        return "\n".join(lines)
