"""What every end-to-end script here needs: named checks that are counted,
and waiting on a condition with a deadline instead of sleeping for a guess.

    from e2e_support import DEADLINE, check, eventually, failures
    check(eventually(lambda: server_answers()), "the server answers")
    sys.exit(1 if failures else 0)
"""
import time

# Seconds; generous for loaded CI machines and sanitizer builds.
DEADLINE = 60

# The descriptions of the checks that failed, in order.
failures = []


def check(cond, what):
    """Prints `what` as ok or FAIL, and counts a failure."""
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        failures.append(what)


def eventually(cond, deadline=DEADLINE):
    """Polls `cond` until it is true (returns True) or `deadline` seconds
    pass (returns False)."""
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        if cond():
            return True
        time.sleep(0.05)  # poll interval
    return False
