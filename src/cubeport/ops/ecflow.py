"""Export a suite to ecFlow: a `.def`, one `.ecf` script per task, and the `head.h`/`tail.h` they include.

FMI and ECMWF run operations under ecFlow, so a Cubeport suite must run there unchanged: the tree, the
variables, triggers (Cubeport's grammar is ecFlow's; written spaced and bracketed, as ecFlow 5.9 reads
them), limits, tries (`ECF_TRIES`, on every task: ecFlow's default is 2) and the schedule (a `cron` on the
suite, which ecFlow requeues when a run completes; an aborted run waits for an operator) map one to one.
ecFlow substitutes variables into values again, so a Cubeport value (literal) has its `%` doubled.
Two things do not map:

- ecFlow has no task timeout (`late` only raises a flag; `ECF_TIMEOUT` is how long `ecflow_client` waits
  for the server). `head.h` runs the command under coreutils `timeout` (`CUBEPORT_TIMEOUT`, an ecFlow
  variable an operator can alter) and aborts with the reason; the task also gets `late -c` so ecFlow's
  viewers flag it.
- A command is words, never a shell line. ecFlow substitutes `%VAR%` into the script text, so the words
  are written one per line into a quoted here-document (nothing in a value is shell code) and read back
  into `"$@"`; a literal `%` is doubled (ecFlow's micro character).

Layout in the export folder (ECF_HOME = ECF_FILES = the folder, so jobs and outputs land beside scripts)::

    <suite>.def   include/head.h   include/tail.h   <suite>/<family>/.../<task>.ecf
"""

from __future__ import annotations

import json
import math
import re
import shlex
import subprocess
from collections.abc import Mapping
from pathlib import Path

from cubeport.errors import InputError
from cubeport.ops.suites import FamilySpec, Node, Suite, TaskSpec, Trigger, parse_trigger

_VARIABLE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)%")
# variables the ecFlow server generates for every task (see ecFlow's "generated variables")
GENERATED = {"SUITE", "FAMILY", "FAMILY1", "TASK", "ECF_DATE", "DATE", "YYYY", "DOW", "DOY", "DD", "MM"}
END_OF_WORDS = "CUBEPORT_WORDS"
CLIENT_PYTHON = "/usr/bin/python3"  # Debian's python3-ecflow is built for the system Python only

HEAD = """\
#!/bin/sh
# head.h: written by `cubeport suites export-ecflow`, included first by every task script.
# It tells ecFlow the job started (--init), and aborts the task with a reason when anything fails.
set -e  # stop at the first error
set -u  # an unset shell variable is an error

export ECF_PORT=%ECF_PORT%    # the server's port
export ECF_HOST=%ECF_HOST%    # the server's host
export ECF_NAME=%ECF_NAME%    # this task's path
export ECF_PASS=%ECF_PASS%    # the job's password
export ECF_TRYNO=%ECF_TRYNO%  # the run number, from 1 (ECF_TRIES runs at most)
export ECF_RID=$$             # the job's process id: ecFlow's kill and zombie checks use it

cubeport_timeout=%CUBEPORT_TIMEOUT:0%  # seconds, 0 for none: ecFlow has no task timeout of its own
cubeport_child=
cubeport_reason=

# On any exit that tail.h did not clear: stop the command and tell ecFlow why.
cubeport_exit() {
    cubeport_status=$?
    trap - EXIT
    set +e
    if [ -n "$cubeport_child" ]; then kill "$cubeport_child" 2>/dev/null; wait "$cubeport_child"; fi
    [ -n "$cubeport_reason" ] || cubeport_reason="the job script failed with status $cubeport_status"
    echo "cubeport: aborting $ECF_NAME: $cubeport_reason" >&2
    # once ecFlow knows, end with 0: a failed ECF_JOB_CMD would replace the reason with its own
    if ecflow_client --abort="$cubeport_reason"; then exit 0; fi
    exit "$cubeport_status"
}
cubeport_signal() {
    cubeport_reason="killed by signal $1"
    exit "$2"
}
trap cubeport_exit EXIT
trap 'cubeport_signal HUP 129' HUP
trap 'cubeport_signal INT 130' INT
trap 'cubeport_signal QUIT 131' QUIT
trap 'cubeport_signal USR1 138' USR1
trap 'cubeport_signal USR2 140' USR2
trap 'cubeport_signal TERM 143' TERM

# Run the task's command ("$@") in the background, so a signal to this script is handled at once.
cubeport_run() {
    printf 'cubeport: %%s try %%s runs:' "$ECF_NAME" "$ECF_TRYNO"
    printf ' %%s' "$@"
    printf '\n'
    if [ "$cubeport_timeout" != 0 ]; then
        timeout --kill-after=30 "$cubeport_timeout" "$@" &
    else
        "$@" &
    fi
    cubeport_child=$!
    cubeport_status=0
    wait "$cubeport_child" || cubeport_status=$?
    cubeport_child=
    if [ "$cubeport_timeout" != 0 ] && { [ "$cubeport_status" -eq 124 ] || [ "$cubeport_status" -eq 137 ]; }; then
        cubeport_reason="timed out after $cubeport_timeout s"
    elif [ "$cubeport_status" -ne 0 ]; then
        cubeport_reason="${1##*/} exited with status $cubeport_status"
    fi
    [ "$cubeport_status" -eq 0 ] || exit "$cubeport_status"
}

ecflow_client --init=$$
"""

TAIL = """\
# tail.h: written by `cubeport suites export-ecflow`, included last by every task script.
ecflow_client --complete  # tell ecFlow the task is done
trap - EXIT               # a normal end: no abort
exit 0
"""


def export_ecflow(
    suite: Suite, folder: Path, *, cubeport: str = "cubeport", variables: Mapping[str, str] = {}
) -> Path:
    """Write the suite for ecFlow into `folder` (see the module's layout); the path of the `.def`.

    cubeport: the Cubeport command on the ecFlow host (the suite's CUBEPORT); variables: more suite
    variables, e.g. a run's DELIVERY or ECF_JOB_CMD; they win over the suite's own, as a run's do.
    InputError when a command names an unset variable, a schedule has no ecFlow form, or a value
    cannot be written in a `.def`.
    """
    folder = Path(folder).resolve()  # the server runs elsewhere: every path absolute
    text = definition(suite, folder, cubeport=cubeport, variables=variables)
    scripts = {node.path: task_script(node) for node in suite.tasks()}
    (folder / "include").mkdir(parents=True, exist_ok=True)
    (folder / "include" / "head.h").write_text(HEAD)
    (folder / "include" / "tail.h").write_text(TAIL)
    for path, script in scripts.items():
        target = folder / f"{path.lstrip('/')}.ecf"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(script)
    target = folder / f"{suite.name}.def"
    target.write_text(text)
    return target


def definition(
    suite: Suite, folder: Path, *, cubeport: str = "cubeport", variables: Mapping[str, str] = {}
) -> str:
    """The `.def` text of the suite, with its scripts expected in `folder` (an absolute path)."""
    if "%" in str(folder):
        raise InputError(f"{folder}: an ecFlow folder cannot contain '%' (ecFlow's variable marker)")
    top = {
        **suite.spec.variables,
        "ECF_HOME": str(folder),
        "ECF_FILES": str(folder),
        "ECF_INCLUDE": str(folder / "include"),
        "CUBEPORT": cubeport,
        **variables,
    }
    for node in suite.tasks():
        _check_variables(suite, node, top)
    title = f": {' '.join(suite.spec.title.split())}" if suite.spec.title else ""  # one comment line
    lines = [
        f"# written by cubeport suites export-ecflow from suite {suite.name}{title}",
        f"suite {suite.name}",
    ]
    lines += [f"  edit {name} {_value(value, name)}" for name, value in top.items()]
    lines += [f"  limit {name} {tokens}" for name, tokens in suite.spec.limits.items()]
    schedule = ecflow_cron(every=suite.spec.every, cron=suite.spec.cron)
    if schedule:
        lines.append(f"  {schedule}")
    for path in _top_paths(suite):
        lines += _node_lines(suite, suite.nodes[path], 1, run_variables=set(variables))
    lines += ["endsuite", ""]
    return "\n".join(lines)


def task_script(node: Node) -> str:
    """A task's `.ecf`: head.h, the command's words (ecFlow substitutes `%VAR%` in them), tail.h."""
    spec = node.spec
    assert isinstance(spec, TaskSpec)
    words = spec.words()
    if any("\n" in word or "\r" in word for word in words):
        raise InputError(
            f"{node.path}: a word of the command has a line break, which an ecFlow job cannot pass"
        )
    return "\n".join(
        [
            "%include <head.h>",
            f"# {node.path}: {_ecf_text(shlex.join(words))}",
            "# the command's words, one per line after ':', read into \"$@\" (a value is never shell code)",
            "set --",
            "while IFS= read -r cubeport_word; do",
            '    set -- "$@" "${cubeport_word#:}"',
            f"done <<'{END_OF_WORDS}'",
            *(f":{_ecf_text(word)}" for word in words),
            END_OF_WORDS,
            'cubeport_run "$@"',
            "%include <tail.h>",
            "",
        ]
    )


def trigger_text(trigger: Trigger, nested: bool = False) -> str:
    """A trigger as ecFlow reads it: the same expression, spaced, with `not` and nested `and`/`or` in
    parentheses (ecFlow 5.9 refuses `not(a == complete)` and `not not ...`, which Cubeport reads)."""
    if trigger.kind == "compare":
        return f"{trigger.reference} {'==' if trigger.equal else '!='} {trigger.state.value}"
    if trigger.kind == "not":
        return f"not ( {trigger_text(trigger.parts[0])} )"
    text = f" {trigger.kind} ".join(trigger_text(part, nested=True) for part in trigger.parts)
    return f"( {text} )" if nested else text


def ecflow_cron(*, every: float | None = None, cron: str | None = None) -> str | None:
    """The ecFlow `cron` line for a suite's schedule (None without one); InputError if it has none.

    ecFlow's time series restarts each day, so `every` must divide a day in whole minutes; a five-field
    cron maps when its minute is a step dividing an hour (or one minute) and its hour is `*`, one hour or
    a step dividing a day; days and months become ecFlow's -d/-m/-w lists.
    """
    if every is not None:
        seconds = round(every)
        if seconds != every or seconds % 60 or 86400 % seconds:
            raise InputError(
                f"every: {every:g} s cannot be expressed as an ecFlow cron (whole minutes that divide a day, "
                "e.g. 900)"
            )
        return "cron 00:00" if seconds == 86400 else f"cron 00:00 23:59 {_hhmm(seconds // 60)}"
    if cron is None:
        return None
    fields = cron.split()
    problem = InputError(
        f"cron {cron!r} cannot be expressed as an ecFlow cron: use a minute step that divides an hour "
        "('*/15 * * * *'), a minute of every hour or of some hours ('5 */6 * * *'), and plain day, "
        "month and weekday lists"
    )
    if len(fields) != 5:
        raise problem
    minute, hour, day, month, weekday = fields
    options = []
    for flag, text, low, high in (("-w", weekday, 0, 7), ("-d", day, 1, 31), ("-m", month, 1, 12)):
        if text != "*":
            values = _cron_list(text, low, high, problem)
            if flag == "-w":
                values = sorted({v % 7 for v in values})  # cron's 7 is Sunday too; ecFlow's is 0
            options.append(f"{flag} {','.join(str(v) for v in values)}")
    if day != "*" and weekday != "*":
        raise problem  # cron runs on either; ecFlow would need both
    prefix = " ".join(["cron", *options])
    if hour == "*":
        if minute == "*":
            return f"{prefix} 00:00 23:59 00:01"
        step = _step(minute, 60)
        if step is not None:
            return f"{prefix} 00:00 23:59 {_hhmm(step)}"
        at = _number(minute, 0, 59, problem)
        return f"{prefix} 00:{at:02d} 23:{at:02d} 01:00"
    at = _number(minute, 0, 59, problem)
    hours = _step(hour, 24)
    if hours is not None:
        return f"{prefix} 00:{at:02d} {24 - hours:02d}:{at:02d} {_hhmm(hours * 60)}"
    return f"{prefix} {_number(hour, 0, 23, problem):02d}:{at:02d}"


def check_definition(path: Path, *, python: str = CLIENT_PYTHON) -> list[str]:
    """ecFlow's own verdict on an exported `.def`: its parser, `Defs.check()` and job creation for every
    task (scripts found, includes, `%VAR%` substitution). Problems as text, [] when ecFlow accepts it.

    Runs Debian's python3-ecflow in the system Python (it is not built for ours); FileNotFoundError when
    that Python or its ecflow module is missing.
    """
    if not Path(python).exists():
        raise FileNotFoundError(f"{python}: the Python of python3-ecflow is not installed")
    done = subprocess.run(
        [python, "-c", _CHECK, str(Path(path).resolve())], capture_output=True, text=True, timeout=120
    )
    if done.returncode == 3:
        raise FileNotFoundError(f"python3-ecflow is not installed for {python}: {done.stderr.strip()}")
    if done.returncode != 0:
        raise RuntimeError(f"ecFlow's check did not run: {done.stderr.strip()[-2000:]}")
    return list(json.loads(done.stdout))


_CHECK = """
import json, sys, tempfile
try:
    import ecflow
except ImportError as exc:
    print(exc, file=sys.stderr); sys.exit(3)
try:
    defs = ecflow.Defs(sys.argv[1])
except RuntimeError as exc:
    print(json.dumps([str(exc).strip()])); sys.exit(0)
problems = [defs.check().strip()]
with tempfile.TemporaryDirectory() as jobs:
    control = ecflow.JobCreationCtrl()
    control.set_dir_for_job_creation(jobs)
    defs.check_job_creation(control)
    problems.append(control.get_error_msg().strip())
print(json.dumps([p for p in problems if p]))
"""


# -- helpers ------------------------------------------------------------------------------------------------
def _top_paths(suite: Suite) -> list[str]:
    return [path for path, node in suite.nodes.items() if node.parent == suite.path]


def _node_lines(suite: Suite, node: Node, depth: int, *, run_variables: set[str]) -> list[str]:
    pad = "  " * depth
    spec = node.spec
    kind = "task" if isinstance(spec, TaskSpec) else "family"
    lines = [f"{pad}{kind} {node.name}"]
    inner = pad + "  "
    # a run's variables are set on the suite and must win there, as in Cubeport's own runs
    lines += [
        f"{inner}edit {name} {_value(value, name)}"
        for name, value in spec.variables.items()
        if name not in run_variables
    ]
    if spec.trigger is not None:
        lines.append(f"{inner}trigger {trigger_text(parse_trigger(spec.trigger))}")
    if spec.inlimit is not None:
        lines.append(f"{inner}inlimit /{suite.name}:{spec.inlimit}")
    if isinstance(spec, TaskSpec):
        lines.append(f"{inner}edit ECF_TRIES {spec.tries}")  # always: ecFlow's own default is 2
        if spec.timeout is not None:
            lines.append(f"{inner}edit CUBEPORT_TIMEOUT {_seconds(spec.timeout)}")
            minutes = math.ceil(spec.timeout / 60)
            if minutes < 24 * 60:  # ecFlow's late takes hh:mm below a day
                lines.append(f"{inner}late -c +{_hhmm(minutes)}")
        return lines
    assert isinstance(spec, FamilySpec)
    for child in node.children:
        lines += _node_lines(suite, suite.nodes[child], depth + 1, run_variables=run_variables)
    lines.append(f"{pad}endfamily")
    return lines


def _check_variables(suite: Suite, node: Node, top: Mapping[str, str]) -> None:
    spec = node.spec
    assert isinstance(spec, TaskSpec)
    known = suite.variables(node.path, top)
    for name in _VARIABLE.findall(shlex.join(spec.words())):
        if name not in known and name not in GENERATED and not name.startswith("ECF_"):
            raise InputError(
                f"{node.path}: variable %{name}% is not set; set it in the suite or give it to the export"
            )


def _value(value: str, name: str) -> str:
    """A variable's value quoted for a `.def`.

    ecFlow's parser has no escapes: it splits the line on white space (so runs of it become one space)
    and a word starting with '#' begins a comment; such values are refused. ecFlow substitutes values
    again after substituting them (a value '%D%' becomes D's value), so a Cubeport value, which is
    literal, has its '%' doubled; ecFlow's own ECF_* variables are ecFlow text and kept as given.
    """
    if " ".join(value.split()) != value or any(word.startswith("#") for word in value.split()):
        raise InputError(
            f"variable {name}: {value!r} cannot be written in an ecFlow definition (no tabs, line breaks, "
            "repeated or outer spaces, or words starting with '#')"
        )
    return f"'{value}'" if name.startswith("ECF_") else f"'{value.replace('%', '%%')}'"


def _ecf_text(text: str) -> str:
    """Text for a `.ecf` script: `%VAR%` kept for ecFlow to substitute, every other `%` doubled."""
    out, position = [], 0
    for match in _VARIABLE.finditer(text):
        out += [text[position : match.start()].replace("%", "%%"), match.group(0)]
        position = match.end()
    out.append(text[position:].replace("%", "%%"))
    return "".join(out)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _seconds(value: float) -> str:
    return str(int(value)) if value == int(value) else f"{value:g}"


def _step(text: str, period: int) -> int | None:
    """N of '*/N' when N divides the period (so ecFlow's daily series fires at the same times)."""
    match = re.fullmatch(r"\*/(\d+)", text)
    if match is None:
        return None
    step = int(match.group(1))
    return step if 0 < step < period and period % step == 0 else None


def _number(text: str, low: int, high: int, problem: InputError) -> int:
    if not text.isdigit() or not low <= int(text) <= high:
        raise problem
    return int(text)


def _cron_list(text: str, low: int, high: int, problem: InputError) -> list[int]:
    values: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        start = _number(first, low, high, problem)
        end = _number(last, low, high, problem) if last else start
        if end < start:
            raise problem
        values.update(range(start, end + 1))
    return sorted(values)
