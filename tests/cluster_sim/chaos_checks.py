"""What a chaos run (``chaos_run``) must show, as a list of problems (empty:
the run is correct). The register and append checks reuse
``harness.history``'s checkers on a history built from the records.

* **survival** (``harness.history.survival``, union of the nodes): every
  acknowledged SET, TKV.PUTCTX and APPEND is present (the value, or the token inside a
  sibling of the appended string) or superseded by a write or delete that
  does not precede it and is itself accounted for. With ``appendfsync
  everysec`` a write acknowledged at ONE sits on one node for up to a
  second unsynced, so the design does not promise it: it counts as unknown.
* **replicas agree**: the Tictac roots matched within the bound after the
  heal, every key has the same versions on every node, and GET at ALL
  answers the winner they hold.
* **sessions** (``harness.history.sessions``): read-your-writes and
  monotonic reads for each client across the nodes it moves between,
  counting only what QUORUM promises: writes and reads at QUORUM or ALL
  (a write acknowledged at ONE is unknown here, a read at ONE is left
  out). Checked where the design promises them: ``appendfsync always`` (an
  everysec crash may lose a write both quorums counted on) and either
  ``--cluster-write-context read`` (the promise holds regardless of clocks)
  or all clocks equal (with ``local``, a coordinator that missed a write
  acknowledged just before makes a sibling, and GET shows the sibling with
  the greater clock: skewed clocks may pick the older one).
* **siblings**: every value shown (TKV.SIBLINGS, final reads) was written
  to that key, and shown at most once per time it was sent (a retried SET
  through two coordinators is two concurrent writes of one value: two
  siblings, both that value); a key never has more siblings than the coordinator
  *actors* (a node in one life: a crash starts a new one) that SET it,
  plus its TKV.PUTCTX writes (each supersedes only the context it carries).
  A coordinator's SET supersedes what its own replica has seen, so its
  SETs leave at most one sibling per life; a client is not the writer
  here: two of one client's writes through two coordinators that had not
  seen each other are siblings by design (``local`` write context).
* **counters**: a counter's value (on any node, any sibling, any INCR
  reply) never exceeds the INCR requests that may have applied (retries
  count twice), and a counter with an acknowledged INCR is at least 1.
* **replies**: no reply of an unexpected type, and no request left
  unanswered until the client gave up (``REQUEST_TIMEOUT_SECONDS``): a
  coordinator answers, NOREPLICAS at worst, within its write timeouts.
"""

from __future__ import annotations

from harness.history import model
from harness.history.sessions import check_sessions
from harness.history.survival import check_survival

from .chaos_run import (
    APPEND_KEYS, COUNTER_KEYS, FAIL, OK, REGISTER_KEYS, REQUEST_TIMEOUT_SECONDS, UNKNOWN, ChaosRun, Record,
)

EXPECTED_REPLY = {
    "SET": str, "PUTCTX": str, "DEL": int, "APPEND": int, "INCR": int, "GET": (str, type(None)), "SIBLINGS": list,
}


def _tokens(value: str) -> list[str]:
    return [token for token in value.split(";") if token]


def _op(record: Record, kind: str, value: str | None, outcome: str, result: object = None) -> model.Op:
    return model.Op(
        index=record.index, process=record.process, kind=kind, key=record.key, value=value,
        invoke_s=record.invoke_s, complete_s=record.complete_s, outcome=outcome, result=result,  # type: ignore[arg-type]
        error=record.error, node=record.nodes[-1],
    )


def survival_history(run: ChaosRun) -> model.History:
    everysec = run.schedule.appendfsync == "everysec"
    history = model.History(meta={"seed": run.schedule.seed})
    for record in run.records:
        outcome = record.outcome
        if outcome == OK and everysec and record.level == "ONE":
            outcome = UNKNOWN
        if record.command in ("SET", "PUTCTX", "APPEND"):
            history.ops.append(_op(record, model.WRITE, record.argument, outcome))
        elif record.command == "DEL" and record.key not in COUNTER_KEYS:
            history.ops.append(_op(record, model.DELETE, None, outcome))
    for final in run.finals:
        if final.key in REGISTER_KEYS:
            history.finals.append(model.FinalRead(final.node, final.key, final.values))
        elif final.key in APPEND_KEYS:
            tokens = sorted({token for value in final.values for token in _tokens(value)})
            history.finals.append(model.FinalRead(final.node, final.key, tokens))
    return history


def sessions_promised(run: ChaosRun) -> bool:
    schedule = run.schedule
    return schedule.appendfsync == "always" and (schedule.write_context == "read" or schedule.clocks_agree)


def sessions_history(run: ChaosRun) -> model.History:
    history = model.History(meta={"seed": run.schedule.seed})
    for record in run.records:
        if record.key not in REGISTER_KEYS:
            continue
        quorum = record.level != "ONE"
        if record.command in ("SET", "PUTCTX", "DEL"):
            outcome = record.outcome if quorum or record.outcome == FAIL else UNKNOWN
            kind = model.DELETE if record.command == "DEL" else model.WRITE
            history.ops.append(_op(record, kind, record.argument, outcome))
        elif record.command in ("GET", "SIBLINGS") and quorum:
            history.ops.append(_op(record, model.READ, None, record.outcome, record.reply if record.outcome == OK else None))
    return history


def _sibling_problems(run: ChaosRun) -> list[str]:
    problems = []
    writes = {
        record.argument: record for record in run.records
        if record.command in ("SET", "PUTCTX") and record.outcome != FAIL
    }
    observations = [
        (record.key, record.reply, record.complete_s, record.line())
        for record in run.records if record.command == "SIBLINGS" and record.outcome == OK
    ]
    observations += [
        (final.key, final.values, float("inf"), f"final {final.node} {final.key} {final.values}")
        for final in run.finals if final.key in REGISTER_KEYS
    ]
    for key, values, complete_s, line in observations:
        assert isinstance(values, list)
        for value in sorted(set(values)):
            source = writes.get(value)
            if source is None or source.key != key or source.invoke_s > complete_s:
                problems.append(f"value {value!r} was never written to {key!r} before it was shown: {line}")
            elif values.count(value) > len(source.nodes):
                problems.append(f"value {value!r} shown more often than it was sent: {line}")
        earlier = [record for record in writes.values() if record.key == key and record.invoke_s <= complete_s]
        actors = {node for record in earlier if record.command == "SET" for node in record.nodes}
        # A TKV.PUTCTX supersedes its context only: each attempt may leave a sibling.
        contexts = sum(len(record.nodes) for record in earlier if record.command == "PUTCTX")
        if len(values) > max(1, len(actors) + contexts):
            problems.append(
                f"{len(values)} siblings but {len(actors)} coordinator actors and {contexts} TKV.PUTCTX "
                f"wrote {key!r}: {line}"
            )
    return problems


def _counter_problems(run: ChaosRun) -> list[str]:
    problems = []
    for key in COUNTER_KEYS:
        incrs = [record for record in run.records if record.key == key and record.command == "INCR"]
        applied = sum(len(record.nodes) for record in incrs if record.outcome != FAIL)
        for record in incrs:
            if record.outcome == OK:
                before = sum(len(other.nodes) for other in incrs if other.outcome != FAIL and other.invoke_s <= record.complete_s)
                if not isinstance(record.reply, int) or record.reply > before:
                    problems.append(f"INCR answered {record.reply!r} after at most {before} increments: {record.line()}")
        for final in run.finals:
            if final.key != key:
                continue
            numbers = [int(value) for value in final.values]
            if any(number > applied for number in numbers):
                problems.append(f"counter {key} on {final.node} is {numbers}, above the {applied} INCRs sent")
            if any(record.outcome == OK for record in incrs) and (not numbers or min(numbers) < 1):
                problems.append(f"counter {key} on {final.node} is {numbers} after an acknowledged INCR")
    return problems


def _agreement_problems(run: ChaosRun) -> list[str]:
    if run.converged_seconds is None:
        return ["the replicas' tree roots did not agree within the bound after the heal"]
    problems = []
    by_key: dict[str, dict[str, list[str]]] = {}
    for final in run.finals:
        by_key.setdefault(final.key, {})[final.node] = final.versions
    for key, nodes in by_key.items():
        if len({tuple(versions) for versions in nodes.values()}) > 1:
            problems.append(f"replicas disagree on {key!r}: {nodes}")
    for final in run.finals:
        if final.key in run.all_reads and run.all_reads[final.key] != final.winner:
            problems.append(
                f"GET {final.key} at ALL answered {run.all_reads[final.key]!r}, {final.node} holds {final.winner!r}"
            )
    return problems


def problems(run: ChaosRun) -> list[str]:
    found: list[str] = []
    for record in run.records:
        if record.outcome == OK and not isinstance(record.reply, EXPECTED_REPLY[record.command]):
            found.append(f"unexpected reply: {record.line()}")
        if record.error == "timeout":
            found.append(f"no reply within {REQUEST_TIMEOUT_SECONDS} s (a hang): {record.line()}")
    survival = check_survival(survival_history(run))
    if not survival.valid:
        found.append(survival.report())
    found += _agreement_problems(run)
    if sessions_promised(run):
        sessions = check_sessions(sessions_history(run))
        if not sessions.valid:
            found.append(sessions.report())
    found += _sibling_problems(run)
    found += _counter_problems(run)
    return found
