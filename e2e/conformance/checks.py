"""What every conformance script shares: where Porta is, and how a check is reported.

Environment: CONFORMANCE_URL (http://127.0.0.1:PORT), CONFORMANCE_TOKEN (an API token with
every scope), CONFORMANCE_SERVER (an enrolled, online server). A script prints `ok  <check>`
or `FAIL <check>: <why>` per check and exits 1 if any failed.
"""

import os
import sys

URL = os.environ["CONFORMANCE_URL"].rstrip("/")
TOKEN = os.environ["CONFORMANCE_TOKEN"]
SERVER = os.environ["CONFORMANCE_SERVER"]

failed = []


def report(check, ok, why=""):
    why = " ".join(str(why).split())  # one line per check
    print(f"ok  {check}" if ok else f"FAIL {check}: {why}", flush=True)
    if not ok:
        failed.append(check)


def finish(run, what="the checks run to their end"):
    """Runs the script's checks; a crash is a failed check, not a traceback. Exits."""
    try:
        run()
    except Exception as e:  # noqa: BLE001
        report(what, False, f"{type(e).__name__}: {e}")
    sys.exit(1 if failed else 0)
