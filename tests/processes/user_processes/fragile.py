"""`fragile`: one long sleep that never reports progress (a dismissal has to stop it from outside), and not safe
to run again (a try killed mid-way must fail the job, never repeat it)."""

import time

from cubeport.processes import JobContext, process


@process("fragile", title="Fragile", keywords=["test"], retry_safe=False)
def fragile(job: JobContext, seconds: float = 1.0) -> dict[str, float]:
    """Sleep `seconds` in one go."""
    job.log(f"sleeping {seconds} s without a word")
    time.sleep(seconds)
    return {"slept": seconds}
