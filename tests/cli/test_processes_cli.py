"""`cubeport processes` and `cubeport jobs` on a data root with the SST sample: list, describe, a new
package, a job run here with --wait and read back (status, steps, meters, logs, results), a job left for a
server and dismissed, and bad input answered with one line and exit code 2, without a job."""

import json
import re
import sys
import warnings

import numpy as np
import pytest
from helpers import cli, context_with

from cubeport.cli.jobs import parse_inputs
from cubeport.errors import InputError


@pytest.fixture(scope="module")
def root(tmp_path_factory, data):
    root = tmp_path_factory.mktemp("jobs-cli") / "root"
    context = context_with(root, data, {"sst": "sst"})
    context.auth.directory.create_user("mia")
    context.auth.directory.create_user("leo")
    context.close()
    return root


@pytest.fixture
def run(capsys, monkeypatch):
    """`cubeport ARGS...` through `cubeport.cli.main` in this process (as the console script runs it, with
    its exit codes), for the quick commands: (exit code, stdout, stderr)."""
    from cubeport.cli import main

    def invoke(*args: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "argv", ["cubeport", *args])
        try:
            main()
            code = 0
        except SystemExit as exit:
            code = int(exit.code or 0)
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_processes_list_and_info(run, root):
    code, stdout, _ = run("processes", "list", "--json", "--data-root", str(root))
    listed = {p["id"]: p for p in json.loads(stdout)}
    assert code == 0 and {"band-math", "temporal-aggregate", "subset"} <= set(listed)
    assert listed["band-math"]["version"] == "1.0.0" and listed["band-math"]["title"] == "Band maths"
    code, stdout, _ = run("processes", "list", "--data-root", str(root))
    assert code == 0 and "temporal-aggregate" in stdout and "Temporal aggregation" in stdout

    code, stdout, _ = run("processes", "info", "temporal-aggregate", "--data-root", str(root))
    assert code == 0
    assert "temporal-aggregate 1.0.0: Temporal aggregation" in stdout
    assert re.search(r"period\s+│ one of: month, season,", stdout)  # type from the JSON Schema
    assert re.search(r"cube\s+│ cube id\s+│ required", stdout)
    assert re.search(r"percentile\s+│ number >= 0, <= 100", stdout)
    assert "output: cube" in stdout
    code, stdout, _ = run("processes", "info", "band-math", "--json", "--data-root", str(root))
    from cubeport.processes.builtin import band_math

    assert code == 0 and json.loads(stdout) == band_math.description_document()


def test_unknown_process(run, root):
    for args in (["processes", "info", "nope"], ["jobs", "submit", "nope", "--as", "mia"]):
        code, stdout, stderr = run(*args, "--data-root", str(root))
        assert (code, stdout, stderr) == (2, "", "cubeport: error: process 'nope' not found\n")


def test_processes_new(run, tmp_path):
    code, stdout, stderr = run("processes", "new", "sea-ice", "--dir", str(tmp_path))
    assert code == 0, stderr
    assert "sea-ice-scale" in stdout and "pip install -e" in stdout
    assert (tmp_path / "sea-ice" / "src" / "sea_ice" / "processes.py").is_file()
    code, _, stderr = run("processes", "new", "sea-ice", "--dir", str(tmp_path))
    assert code == 2 and "exists already" in stderr and "Traceback" not in stderr
    code, _, stderr = run("processes", "new", "Sea_Ice", "--dir", str(tmp_path))
    assert code == 2 and "lower-case letters" in stderr


def test_submit_wait_then_status_logs_and_results(run, root, data):
    """The real command in its own process: the job runs in its dispatcher and worker, then is read back."""
    done = cli(
        "jobs", "submit", "temporal-aggregate", "--input", "cube=sst", "--input", "period=year",
        "--input", "variables=[\"analysed_sst\"]", "--as", "mia", "--wait", "--data-root", str(root),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    job_id = re.search(r"job ([0-9a-f]{32}) successful in", done.stderr).group(1)
    output = f"temporal-aggregate-{job_id[:8]}"
    assert f"result: cube {output} (private to mia)" in done.stdout
    assert "variables: analysed_sst" in done.stdout and "dims: time 1, lat 54, lon 88" in done.stdout

    code, stdout, _ = run("jobs", "status", job_id, "--json", "--data-root", str(root))
    status = json.loads(stdout)
    assert code == 0 and (status["status"], status["progress"], status["owner"]) == ("successful", 100, "mia")
    assert [(s["name"], s["status"]) for s in status["steps"]] == [
        (name, "successful") for name in ("scheduling", "fetching", "processing", "ingesting")
    ]
    assert status["meters"]["wall_seconds"] > 0 and status["meters"]["peak_memory_bytes"] > 0
    code, stdout, _ = run("jobs", "status", job_id, "--data-root", str(root))
    assert code == 0 and "status: successful (100 %) done" in stdout and "ingesting" in stdout

    code, stdout, _ = run("jobs", "logs", job_id, "--follow", "--data-root", str(root))  # ended: returns
    lines = stdout.splitlines()
    assert code == 0 and re.match(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ submitted by mia: temporal-aggregate", lines[0]
    )
    assert "opened cube sst" in stdout and "successful in" in lines[-1]

    code, stdout, _ = run("jobs", "results", job_id, "--json", "--data-root", str(root))
    assert code == 0 and json.loads(stdout) == {"result": {"kind": "cube", "id": output}}
    from cubeport.config import load_settings
    from cubeport.context import Context

    context = Context(load_settings(data_root=str(root)))
    result = context.cubes.open(output)["analysed_sst"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # land: no value in any step
        expected = np.nanmean(context.cubes.open("sst")["analysed_sst"].values, axis=0)
    np.testing.assert_allclose(result.isel(time=0).values, expected, rtol=1e-6)
    mia, leo = (context.auth.directory.principal(name, "password") for name in ("mia", "leo"))
    assert context.policy.allows(mia, "read", "cube", output)
    assert not context.policy.allows(leo, "read", "cube", output)  # private to the job's owner
    context.close()

    code, stdout, _ = run(
        "jobs", "list", "--owner", "mia", "--status", "successful", "--json", "--data-root", str(root)
    )
    assert code == 0 and job_id in [j["jobID"] for j in json.loads(stdout)]


def test_a_job_left_for_a_server_and_dismissed(run, root):
    code, stdout, stderr = run(
        "jobs", "submit", "band-math", "-i", "cube=sst", "-i", "expression=analysed_sst - 273.15",
        "-i", "name=celsius", "--data-root", str(root), "--as", "mia",
    )  # fmt: skip
    job_id = stdout.strip()
    assert code == 0 and re.fullmatch(r"[0-9a-f]{32}", job_id)
    assert "when a server on this data root (`cubeport serve`) takes it" in " ".join(stderr.split())
    code, stdout, _ = run("jobs", "status", job_id, "--data-root", str(root))
    assert "status: accepted (0 %) waiting for a worker" in stdout
    code, _, stderr = run("jobs", "results", job_id, "--data-root", str(root))
    assert code == 2 and f"job {job_id} is accepted, so it has no results" in stderr
    code, stdout, _ = run("jobs", "dismiss", job_id, "--data-root", str(root))
    assert code == 0 and stdout.strip() == f"job {job_id}: dismissed (dismissed before it started)"


@pytest.mark.parametrize(
    "inputs, message",
    [
        (["cube=sst", "period=fortnight"], "input 'period': Input should be 'month', 'season' or 'year'"),
        (["cube=sst", "periods=year"], "process 'temporal-aggregate' has no input 'periods'"),
        (["cube=sst", "variables=chl"], "input 'variables': Input should be a valid list"),
        (["cube=sst", 'variables=["chl"]'], "variable 'chl' is not in the cube"),
        (["cube=nope"], "cube 'nope' not found"),
        (["cube"], "--input 'cube': give NAME=VALUE"),
    ],
)
def test_bad_input_is_one_line_and_no_job(run, root, inputs, message):
    before = run("jobs", "list", "--json", "--data-root", str(root))[1]
    args = [arg for value in inputs for arg in ("-i", value)]
    code, stdout, stderr = run(
        "jobs", "submit", "temporal-aggregate", *args, "--as", "mia", "--data-root", str(root)
    )
    assert (code, stdout) == (2, "") and stderr.startswith("cubeport: error: ") and stderr.count("\n") == 1
    assert message in stderr
    assert run("jobs", "list", "--json", "--data-root", str(root))[1] == before


def test_the_user_is_required_and_must_exist(run, root, monkeypatch):
    monkeypatch.delenv("CUBEPORT_USER", raising=False)
    code, _, stderr = run("jobs", "submit", "subset", "-i", "cube=sst", "--data-root", str(root))
    assert code == 2 and "--as USER, or set CUBEPORT_USER" in stderr
    code, _, stderr = run(
        "jobs", "submit", "subset", "-i", "cube=sst", "--as", "ghost", "--data-root", str(root)
    )
    assert code == 2 and "user 'ghost' does not exist or is disabled" in stderr
    monkeypatch.setenv("CUBEPORT_USER", "ghost")
    code, _, stderr = run("jobs", "submit", "subset", "-i", "cube=sst", "--data-root", str(root))
    assert code == 2 and "ghost" in stderr


def test_unknown_job(run, root):
    for command in ("status", "logs", "results", "dismiss"):
        code, _, stderr = run("jobs", command, "0" * 32, "--data-root", str(root))
        assert (code, stderr) == (2, f"cubeport: error: job '{'0' * 32}' not found\n")


def test_inputs_are_json_when_they_parse():
    assert parse_inputs(
        ["bbox=[10,54,12,56]", "factor=2", "cube=sst", "keep=true", "date=2017-06-05", "q="]
    ) == {
        "bbox": [10, 54, 12, 56],
        "factor": 2,
        "cube": "sst",
        "keep": True,
        "date": "2017-06-05",
        "q": "",
    }
    assert parse_inputs(['name="2"', "expression=a == b"]) == {"name": "2", "expression": "a == b"}
    with pytest.raises(InputError, match="given twice"):
        parse_inputs(["a=1", "a=2"])


@pytest.mark.parametrize(
    "command", [["processes"], ["processes", "new"], ["jobs"], ["jobs", "submit"], ["jobs", "logs"]]
)
def test_help(command):
    from typer.testing import CliRunner

    from cubeport.cli import app

    result = CliRunner().invoke(app, [*command, "--help"], prog_name="cubeport")
    assert result.exit_code == 0 and "Usage: cubeport" in result.output
    if command == ["jobs", "submit"]:
        assert "--as" in result.output and "CUBEPORT_USER" in result.output and "--wait" in result.output
        assert "cubeport jobs submit temporal-aggregate" in result.output


def test_ctrl_c_while_waiting_dismisses_the_job_and_fails(root):
    """Ctrl-C in `jobs submit --wait` dismisses the job and exits non-zero (the job's own process ignores
    the keyboard's SIGINT: the CLI stops it)."""
    import os
    import signal
    import subprocess
    import time
    from pathlib import Path

    from cubeport.config import load_settings
    from cubeport.context import Context

    folder = Path(__file__).resolve().parents[1] / "processes" / "user_processes"
    env = {**os.environ, "CUBEPORT_PROCESSING__USER_PROCESSES": str(folder)}
    command = [sys.executable, "-m", "cubeport", "jobs", "submit", "sleepy", "-i", "seconds=120"]
    child = subprocess.Popen(
        [*command, "--data-root", str(root), "--as", "mia", "--wait"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    context = Context(load_settings(data_root=str(root)))
    deadline = time.monotonic() + 60
    running = []
    while not running and time.monotonic() < deadline:
        time.sleep(0.3)
        running = [
            j for j in context.jobs.list(process_id=["sleepy"])[0] if j.status == "running" and j.attempt
        ]
    assert running, "the job did not start"
    child.send_signal(signal.SIGINT)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode != 0, stderr
    assert "Traceback" not in stderr and "dismissing" in stderr
    assert context.jobs.get(running[0].id).status == "dismissed"
    context.close()
