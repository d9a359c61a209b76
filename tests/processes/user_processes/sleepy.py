"""`sleepy`: sleeps in short steps, reporting progress (so a dismissal stops it at once); safe to run again."""

import time

from cubeport.processes import JobContext, process


@process("sleepy", title="Sleepy", keywords=["test"])
def sleepy(job: JobContext, seconds: float = 1.0) -> dict[str, float]:
    """Sleep `seconds` in steps of 0.1 s, reporting progress after each."""
    job.log(f"sleeping {seconds} s")
    end = time.monotonic() + seconds
    while (left := end - time.monotonic()) > 0:
        time.sleep(min(0.1, left))
        job.progress(1 - max(0.0, end - time.monotonic()) / seconds)
    job.log("awake")
    return {"slept": seconds}
