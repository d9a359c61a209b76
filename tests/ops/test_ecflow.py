"""The ecFlow export: the `.def` text, schedules, and the exported suite run by a real Debian ecFlow server,
whose jobs call the real Cubeport CLI on synthetic ICEYE deliveries (good, then bad, then fixed)."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ecflow_server import EcflowServer, ecflow_installed

from cubeport.errors import InputError
from cubeport.ops.ecflow import check_definition, ecflow_cron, export_ecflow
from cubeport.ops.suites import Suite, load_suite

sys.path.insert(0, str(Path(__file__).parents[1] / "seaice"))
from deliveries import truncate, write_legacy  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::rasterio.errors.NotGeoreferencedWarning")

CUBEPORT = str(Path(sys.executable).parent / "cubeport")

SEAICE = """
suite: seaice
title: Sea ice every 15 minutes
every: 900
variables: {AREA: bothnian bay}
limits: {scenes: 2}
nodes:
  - task: validate
    command: "%CUBEPORT% seaice validate %DELIVERY%"
  - family: process
    trigger: validate == complete
    inlimit: scenes
    variables: {RESOLUTION: "40"}
    nodes:
      - task: chain
        command: "%CUBEPORT% seaice process %DELIVERY% --resolution %RESOLUTION%"
        tries: 3
        timeout: 1800
      - family: publish
        nodes:
          - task: deliver
            trigger: ../chain == complete and /seaice/validate eq complete
            command: "%CUBEPORT% seaice deliver %DELIVERY%"
"""


@pytest.fixture(scope="module")
def ecflow() -> Iterator[EcflowServer]:
    if not ecflow_installed():
        pytest.fail("ecflow-server and ecflow-client are missing: `make test` installs APT_TEST_PACKAGES")
    server = EcflowServer().start()
    yield server
    server.stop()


def test_definition_has_the_tree_variables_limits_tries_and_schedule(tmp_path: Path) -> None:
    suite = load_suite(SEAICE)
    definition = export_ecflow(suite, tmp_path, cubeport="/opt/cubeport", variables={"DELIVERY": "/in/a.zip"})
    assert definition == tmp_path / "seaice.def"
    lines = [line for line in definition.read_text().splitlines() if line and not line.startswith("#")]
    expected = [
        "suite seaice",
        "  edit AREA 'bothnian bay'",
        f"  edit ECF_HOME '{tmp_path}'",
        f"  edit ECF_FILES '{tmp_path}'",
        f"  edit ECF_INCLUDE '{tmp_path}/include'",
        "  edit CUBEPORT '/opt/cubeport'",
        "  edit DELIVERY '/in/a.zip'",
        "  limit scenes 2",
        "  cron 00:00 23:59 00:15",
        "  task validate",
        "    edit ECF_TRIES 1",  # ecFlow's own default is 2 tries
        "  family process",
        "    edit RESOLUTION '40'",
        "    trigger validate == complete",
        "    inlimit /seaice:scenes",
        "    task chain",
        "      edit ECF_TRIES 3",
        "      edit CUBEPORT_TIMEOUT 1800",
        "      late -c +00:30",
        "    family publish",
        "      task deliver",
        "        trigger ../chain == complete and /seaice/validate == complete",
        "        edit ECF_TRIES 1",
        "    endfamily",
        "  endfamily",
        "endsuite",
    ]
    assert lines == expected
    for task in ("seaice/validate.ecf", "seaice/process/chain.ecf", "seaice/process/publish/deliver.ecf"):
        script = (tmp_path / task).read_text()
        assert script.startswith("%include <head.h>\n") and script.endswith("%include <tail.h>\n")
    assert ":%DELIVERY%\n" in (tmp_path / "seaice/process/chain.ecf").read_text()
    head = (tmp_path / "include/head.h").read_text()
    assert "ecflow_client --init=$$" in head and 'ecflow_client --abort="$cubeport_reason"' in head
    assert "ecflow_client --complete" in (tmp_path / "include/tail.h").read_text()
    # ecFlow's own parser, checks and job creation (scripts found, includes, every %VAR% set) accept it
    assert check_definition(definition) == []


def test_check_definition_reports_ecflows_own_errors(tmp_path: Path) -> None:
    """check_definition is ecFlow's verdict, not ours: a trigger on a node that is not there fails in it."""
    definition = export_ecflow(load_suite(SEAICE), tmp_path, variables={"DELIVERY": "x"})
    definition.write_text(definition.read_text().replace("trigger validate ==", "trigger validated =="))
    problems = check_definition(definition)
    assert problems and "validated" in problems[0]


def test_triggers_are_written_as_ecflow_reads_them(tmp_path: Path) -> None:
    """Cubeport reads `not(...)` and `not not ...`; ecFlow 5.9 does not, so the export spaces and brackets."""
    triggers = {
        "b": ("not(a==complete)", "not ( a == complete )"),
        "c": ("not not a eq complete", "not ( not ( a == complete ) )"),
        "d": (
            "a == complete or b ne aborted and !c == queued",
            "a == complete or ( b != aborted and not ( c == queued ) )",
        ),
        "e": (
            "(a == complete or b == complete) and /t/c == complete",
            "( a == complete or b == complete ) and /t/c == complete",
        ),
    }
    nodes = [{"task": "a", "command": "true"}]
    nodes += [{"task": name, "command": "true", "trigger": text} for name, (text, _) in triggers.items()]
    definition = export_ecflow(load_suite({"suite": "t", "nodes": nodes}), tmp_path)
    lines = definition.read_text().splitlines()
    assert [f"    trigger {line}" for _, line in triggers.values()] == [
        x for x in lines if x.startswith("    trigger")
    ]
    assert check_definition(definition) == []


@pytest.mark.parametrize(
    ("schedule", "line"),
    [
        ({"every": 900}, "cron 00:00 23:59 00:15"),
        ({"every": 86400}, "cron 00:00"),
        ({"cron": "*/15 * * * *"}, "cron 00:00 23:59 00:15"),
        ({"cron": "* * * * *"}, "cron 00:00 23:59 00:01"),
        ({"cron": "5 * * * *"}, "cron 00:05 23:05 01:00"),
        ({"cron": "0 */6 * * *"}, "cron 00:00 18:00 06:00"),
        ({"cron": "30 2 * * 1-5"}, "cron -w 1,2,3,4,5 02:30"),
        ({"cron": "0 12 1,15 6-8 *"}, "cron -d 1,15 -m 6,7,8 12:00"),
        ({"cron": "0 3 * * 7"}, "cron -w 0 03:00"),
    ],
)
def test_schedules_become_ecflow_crons_that_ecflow_accepts(
    tmp_path: Path, schedule: dict[str, Any], line: str
) -> None:
    assert ecflow_cron(**schedule) == line
    suite = load_suite({"suite": "tick", **schedule, "nodes": [{"task": "t", "command": "true"}]})
    definition = export_ecflow(suite, tmp_path)
    assert f"  {line}" in definition.read_text().splitlines()
    assert check_definition(definition) == []


@pytest.mark.parametrize(
    "schedule",
    [
        {"every": 420},  # 7 minutes: ecFlow's daily series would restart off the step at midnight
        {"every": 90},  # not whole minutes
        {"cron": "*/7 * * * *"},  # fires at :56 then :00, not every 7 minutes
        {"cron": "0-30/5 * * * *"},
        {"cron": "0 9 1 * 1"},  # day of month OR weekday in cron
    ],
)
def test_a_schedule_ecflow_cannot_express_is_an_input_error(tmp_path: Path, schedule: dict[str, Any]) -> None:
    suite = load_suite({"suite": "tick", **schedule, "nodes": [{"task": "t", "command": "true"}]})
    with pytest.raises(InputError, match="cannot be expressed as an ecFlow cron"):
        export_ecflow(suite, tmp_path)
    assert not (tmp_path / "tick.def").exists()


def test_unset_variables_and_unwritable_values_are_input_errors(tmp_path: Path) -> None:
    suite = load_suite(SEAICE)
    with pytest.raises(InputError, match=r"/seaice/validate: variable %DELIVERY% is not set"):
        export_ecflow(suite, tmp_path)
    for value in ("two  spaces", "a #comment", "line\nbreak"):
        with pytest.raises(InputError, match="cannot be written in an ecFlow definition"):
            export_ecflow(suite, tmp_path, variables={"DELIVERY": value})
    broken = load_suite(
        {"suite": "s", "nodes": [{"task": "t", "command": "echo 'one\nCUBEPORT_WORDS\nrm x'"}]}
    )
    with pytest.raises(InputError, match="/s/t: a word of the command has a line break"):
        export_ecflow(broken, tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing written


# -- on a real ecFlow server --------------------------------------------------------------------------------
NRT = """
suite: nrt
variables: {PYTHON: "PYTHON_PATH"}
nodes:
  - task: validate
    command: "%CUBEPORT% seaice validate %DELIVERY% --quarantine"
  - task: cubes
    trigger: validate == complete
    command: "%CUBEPORT% cubes list"
  - family: check
    nodes:
      - task: words
        command: >-
          %PYTHON% -c 'import json, sys; print("argv=" + json.dumps(sys.argv[1:]))'
          %TRICKY% '50%' 'two  spaces' '$HOME' '' %TASK%
""".replace("PYTHON_PATH", sys.executable)
TRICKY = 'it\'s "quoted" 100% $HOME `id` a\\b ;|&'


def job_env(root: Path) -> dict[str, str]:
    """ECF_JOB_CMD and the variables the jobs run with: the venv's PATH and a data root of their own."""
    environment = {
        "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
        "CUBEPORT_DATA_ROOT": str(root),
        "ECF_TIMEOUT": "30",  # how long ecflow_client in a job retries a server that is gone (24 h by default)
    }
    assignments = " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())
    return {"ECF_JOB_CMD": f"env -i {assignments} %ECF_JOB% 1> %ECF_JOBOUT% 2>&1"}


def states(ecflow: EcflowServer, suite: Suite) -> dict[str, str]:
    return {node.path: ecflow.state(node.path) for node in suite.tasks()}


@pytest.mark.slow
def test_ecflow_runs_the_suite_aborts_on_a_bad_delivery_and_completes_after_a_rerun(
    ecflow: EcflowServer, tmp_path: Path
) -> None:
    # several tiles, as in test_delivery: its directory at the end, so a cut file is not readable
    dn = np.random.default_rng(3).integers(1, 6000, (200, 300)).astype(np.uint16)
    good = write_legacy(tmp_path / "good", dn, style="xml", tile=128)
    bad = truncate(write_legacy(tmp_path / "bad", dn, style="xml", tile=128, image_id="666"))
    suite = load_suite(NRT)
    run = {"DELIVERY": str(good), "TRICKY": TRICKY, **job_env(tmp_path / "data")}
    folder = tmp_path / "ecflow"
    definition = export_ecflow(suite, folder, cubeport=CUBEPORT, variables=run)

    ecflow.client(f"--load={definition}")
    ecflow.client("--begin", "nrt")
    assert ecflow.wait_for("/nrt", {"complete", "aborted"}) == "complete", states(ecflow, suite)
    assert set(states(ecflow, suite).values()) == {"complete"}
    assert "valid: ICEYE GRD" in (folder / "nrt/validate.1").read_text()
    assert "no cubes" in (folder / "nrt/cubes.1").read_text().lower()
    # the job got the very words Cubeport's own runner would run: ecFlow substituted, the shell did nothing
    words = next(x for x in (folder / "nrt/check/words.1").read_text().splitlines() if x.startswith("argv="))
    assert json.loads(words.removeprefix("argv=")) == suite.command("/nrt/check/words", run)[3:]

    # a truncated delivery: validate aborts with the reason, the task triggered on it stays queued
    ecflow.client("--alter", "change", "variable", "DELIVERY", str(bad), "/nrt")
    ecflow.client("--requeue", "/nrt")
    assert ecflow.wait_for("/nrt/validate", {"complete", "aborted"}) == "aborted"
    time.sleep(1.5)  # a second dependency check or more: `cubes` must not start
    assert ecflow.state("/nrt/cubes") == "queued" and ecflow.state("/nrt") == "aborted"
    output = (folder / "nrt/validate.1").read_text()
    assert "problem:" in output and "truncated" in output
    assert "aborting /nrt/validate: cubeport exited with status 2" in output
    tree = ecflow.client("--get_state", "/nrt/validate").stdout
    assert "abort<:cubeport exited with status 2>" in tree and "ecfcmd_failed" not in tree  # our reason
    # the job ran with the data root ECF_JOB_CMD gave it: the bad delivery is in its quarantine
    assert list((tmp_path / "data/seaice/quarantine").glob("*.reason.json")) and not bad.exists()

    # the operator fixes the variable and reruns the aborted task: the run goes on to complete
    ecflow.client("--alter", "change", "variable", "DELIVERY", str(good), "/nrt")
    ecflow.client("--force=queued", "/nrt/validate")
    assert ecflow.wait_for("/nrt", {"complete", "aborted"}) == "complete", states(ecflow, suite)
    assert set(states(ecflow, suite).values()) == {"complete"}
    assert "valid: ICEYE GRD" in (folder / "nrt/validate.2").read_text()  # the rerun is try 2
    assert "truncated" in (folder / "nrt/validate.1").read_text()  # and the failed try's output is kept
    ecflow.client("--delete=yes", "/nrt")


@pytest.mark.slow
def test_ecflow_kills_a_task_past_its_timeout_and_repeats_a_scheduled_suite(
    ecflow: EcflowServer, tmp_path: Path
) -> None:
    """The timeout head.h adds (ecFlow has none), a kill, and `every` as ecFlow's cron, which requeues the
    suite."""
    suite = load_suite(
        {
            "suite": "hang",
            "nodes": [{"task": "sleepy", "command": "sleep 60", "timeout": 1, "tries": 2}],
        }
    )
    folder = tmp_path / "hang"
    ecflow.client(f"--load={export_ecflow(suite, folder, variables=job_env(tmp_path / 'data'))}")
    ecflow.client("--begin", "hang")
    started = time.monotonic()
    deadline = started + 30
    while not (folder / "hang/sleepy.2").exists() or ecflow.state("/hang/sleepy") != "aborted":
        assert time.monotonic() < deadline, ecflow.client("--get_state", "/hang").stdout
        time.sleep(0.2)
    assert time.monotonic() - started < 20  # two tries of one second, not of sixty
    for output in ("hang/sleepy.1", "hang/sleepy.2"):  # ECF_TRIES 2: ecFlow ran it again, then gave up
        assert "aborting /hang/sleepy: timed out after 1 s" in (folder / output).read_text()
    # an operator lifts the timeout (it is an ecFlow variable) and kills the run instead: ECF_KILL_CMD
    ecflow.client("--alter", "change", "variable", "CUBEPORT_TIMEOUT", "0", "/hang/sleepy")
    ecflow.client("--requeue", "/hang")
    ecflow.wait_for("/hang/sleepy", {"active"})
    time.sleep(1.5)  # past the old timeout
    ecflow.client("--kill", "/hang/sleepy")
    assert ecflow.wait_for("/hang/sleepy", {"aborted"}) == "aborted"
    assert "abort<:killed by signal TERM>" in ecflow.client("--get_state", "/hang/sleepy").stdout
    time.sleep(1.5)  # ecFlow does not retry a killed task, despite ECF_TRIES 2
    assert ecflow.state("/hang/sleepy") == "aborted"
    ecflow.client("--delete=yes", "/hang")

    tick = load_suite({"suite": "tick", "every": 120, "nodes": [{"task": "t", "command": "true"}]})
    ecflow.client(f"--load={export_ecflow(tick, tmp_path / 'tick', variables=job_env(tmp_path / 'data'))}")
    ecflow.client("--begin", "tick")
    assert ecflow.folder is not None
    log = next(ecflow.folder.glob("*.ecf.log"))
    deadline = time.monotonic() + 30
    while log.read_text().count("complete: /tick/t") < 2:  # complete, requeued by the cron, complete again
        assert time.monotonic() < deadline, ecflow.client("--get_state", "/tick").stdout
        time.sleep(0.2)
    ecflow.client("--delete=yes", "/tick")
