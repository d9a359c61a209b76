"""The wrapper every task runs in: `python -m cubeport.ops.job STATUS -- COMMAND...`.

It plays the part of ecFlow's child commands: it says it started (`STATUS.init`, ecFlow's `--init`), runs the
command, and writes the exit code to `STATUS` (`--complete`/`--abort`) in one atomic rename. The runner reads
these files, so a task's outcome survives a runner that was killed while the task ran.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: python -m cubeport.ops.job STATUS -- COMMAND...", file=sys.stderr)
        return 2
    status, command = Path(argv[0]), argv[2:]
    write_atomic(status.with_name(status.name + ".init"), str(os.getpid()))
    try:
        child = subprocess.Popen(command)
    except OSError as exc:  # a command that cannot start is the task's failure, told in its log
        print(f"cannot start {command[0]!r}: {exc.strerror}", file=sys.stderr, flush=True)
        write_atomic(status, "127")
        return 127

    def forward(signum: int, _frame: object) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    code = child.wait()
    write_atomic(status, str(code))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
