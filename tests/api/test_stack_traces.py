"""Shortening a Java stack trace: every exception and the root cause stay, cuts never split a word."""

from __future__ import annotations

import re

import pytest

from airflow_provider_flink_vvp.api.stack_traces import FRAMES_KEPT, shorten_stack_trace

LIMIT = 2000
TOKEN = "LTAI5tQ8x9ExampleTokenThatMustNotBeSplit0"


def frames(package: str, count: int) -> list[str]:
    return [f"\tat {package}.Class{n}.method{n}(Class{n}.java:{n + 10})" for n in range(count)]


def trace(causes: int, frames_each: int, *, more: bool = True) -> str:
    """A Flink job failure: a top exception and ``causes`` nested causes, the last the root cause."""
    lines = ["org.apache.flink.runtime.JobException: Recovery is suppressed by NoRestartBackoffTimeStrategy"]
    lines += frames("org.apache.flink.runtime.executiongraph", frames_each)
    for n in range(causes):
        lines.append(f"Caused by: java.lang.RuntimeException: cause number {n}")
        lines += frames(f"org.apache.kafka.clients.layer{n}", frames_each)
        if more:
            lines.append(f"\t... {frames_each + 7} more")
    return "\n".join(lines)


def cut_counts(text: str, what: str) -> int:
    return sum(int(n) for n in re.findall(rf"\[(\d+) {what} cut\]", text))


CASES = {
    "short": "java.lang.OutOfMemoryError: Java heap space",
    "exactly the limit": "x" * LIMIT,
    "deep root cause": trace(causes=3, frames_each=40),
    "no '... more' lines": trace(causes=2, frames_each=60, more=False),
    "hundreds of causes": trace(causes=300, frames_each=2),
    "one long line": "error " * 100_000,
    "one long word": "y" * 50_000,
    "JSON without spaces": '{"error":"' + '","'.join(f"k{n}:{TOKEN}" for n in range(200)) + '"}',
    # A line is cut at 940 characters: the token spans it.
    "token on a cut": "w " * 465 + TOKEN + " tail" * 500,
    "tokens on every line": "\n".join(f"{'v' * n} {TOKEN}" for n in range(0, 3000, 7)),
    "just over the limit": "z " * (LIMIT // 2) + "end",
    "empty lines": "\n" * 5000,
}


@pytest.mark.parametrize("case", CASES)
def test_a_message_is_kept_whole_up_to_the_limit_and_else_keeps_each_exception_and_the_root_cause(case: str) -> None:
    text = CASES[case]

    shortened = shorten_stack_trace(text, LIMIT)

    if len(text) <= LIMIT:
        assert shortened == text
        return
    assert len(shortened) <= LIMIT < len(text)
    kept = [line for line in shortened.split("\n") if "cut]" not in line]
    assert all(line in text for line in kept)  # nothing but notes is added
    assert shortened.split("\n")[0] == text.split("\n")[0] or "characters cut]" in shortened.split("\n")[0]
    assert set(re.findall(r"LTAI5t\w*", shortened)) <= {TOKEN}, "a token was split"
    causes = [line for line in text.split("\n") if line.startswith("Caused by:")]
    if causes:
        # The root cause and its top frames, last, always stay.
        root = text.split("\n").index(causes[-1])
        assert "\n".join(text.split("\n")[root : root + 1 + FRAMES_KEPT]) in shortened
    if case in ("deep root cause", "no '... more' lines"):
        # Folding the frames was enough: every exception stays, and the notes count what went.
        assert all(cause in shortened for cause in causes) and "lines cut" not in shortened
        frame_lines = sum(1 for line in text.split("\n") if line.startswith("\t"))
        assert cut_counts(shortened, "frames") == frame_lines - sum(1 for line in kept if line.startswith("\t"))
    if case == "hundreds of causes":
        # Two frames a cause are never folded: whole lines went from the middle, as many as the note says.
        assert cut_counts(shortened, "frames") == 0
        assert cut_counts(shortened, "lines") == len(text.split("\n")) - (len(shortened.split("\n")) - 1)
