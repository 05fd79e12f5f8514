"""A warm `python run.py` for the tests: this process imports what run.py imports, once, then forks one child per
request, and each child goes on as `python SCRIPT ARGS` would after those imports.

Started by tests/cli.py as `python tests/cli_server.py` in the repo root. Requests arrive on stdin, one JSON line
each: {"argv": [script, *args], "cwd": ..., "env": {...}, "stdout": path, "stderr": path}. For each, the server answers on its stdout
one line {"pid": N} when the child has started and one line {"rc": N} when it has ended (negative: killed by that
signal, as subprocess reports it). The server ends at the end of its input, so it never outlives the test session.

The child is a fresh interpreter in all that the script can observe: argv, sys.path[0] (the script's folder), working
directory, environment, stdin from /dev/null, stdout and stderr into the files named (one file: merged), fresh seeds of `random` and NumPy's
global generator; the script runs as __main__ and the child then leaves the interpreter the ordinary way (an
uncaught exception's traceback and status 1, SystemExit's status, non-daemon threads joined, atexit handlers,
finalization). Only the interpreter's start-up and the imports of run.py's first lines are shared; a variable of the
environment read by those imports has the server's value, so tests/cli.py sends here only runs whose environment
is the server's.
"""

import json
import os
import sys

ROOT = os.getcwd()
sys.path[0] = ROOT  # as for `python run.py`: the script's folder first, not tests/

# run.py's imports, in its order (lightning before Hydra's logging set-up)
import hydra  # noqa: E402,F401
import lightning  # noqa: E402,F401
from omegaconf import DictConfig  # noqa: E402,F401

from toponets_exp.tasks import run  # noqa: E402,F401


def child(request: dict, channel: int) -> None:
    """Become `python SCRIPT ARGS` and run the script; returns or raises only as the script does."""
    import random
    import runpy

    os.close(channel)
    script = os.path.abspath(os.path.join(request["cwd"], request["argv"][0]))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    err = out if request["stderr"] == request["stdout"] else \
        os.open(request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    for fd, target in ((0, null), (1, out), (2, err)):
        os.dup2(target, fd)
    for fd in {null, out, err}:
        os.close(fd)
    sys.argv = list(request["argv"])
    sys.path[0] = os.path.dirname(script)
    random.seed()
    if "numpy" in sys.modules:
        sys.modules["numpy"].random.seed()
    try:
        runpy.run_path(script, run_name="__main__")
    except (SystemExit, KeyboardInterrupt):
        raise
    except BaseException as err:  # the interpreter's report of an uncaught exception, from the script's frame on
        tb = err.__traceback__
        while tb is not None and tb.tb_frame.f_code.co_filename != script:
            tb = tb.tb_next
        if tb is not None:
            err.__traceback__ = tb
        sys.excepthook(type(err), err, err.__traceback__)
        sys.exit(1)


def main() -> None:
    channel = os.dup(1)  # answers go here; fd 1 and 2 become each child's log
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.close(null)

    def answer(**fields) -> None:
        os.write(channel, (json.dumps(fields) + "\n").encode())

    answer(ready=True)
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            child(request, channel)
            return  # the script ended: leave the interpreter as `python SCRIPT` does, with status 0
        answer(pid=pid)
        _, status = os.waitpid(pid, 0)
        answer(rc=os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
