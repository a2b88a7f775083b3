"""The errors every layer raises and the CLI maps to exit codes (a leaf module)."""

from __future__ import annotations


class UsageError(ValueError):
    """Bad usage or invalid answers: the CLI exits 2 and writes nothing."""


class CommandError(RuntimeError):
    """A command backforge ran failed; carries its output."""

    def __init__(self, command: list[str], returncode: int, output: str) -> None:
        self.command = command
        self.returncode = returncode
        self.output = output
        super().__init__(f"`{' '.join(command)}` exited {returncode}:\n{tail_lines(output, 20)}")


def tail_lines(text: str, lines: int) -> str:
    """The last `lines` lines of `text` (stripped): what a failure message shows of an output."""
    return "\n".join(text.strip().splitlines()[-lines:])
