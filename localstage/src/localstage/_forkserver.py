"""The parent of every function environment of a stage: a fork server, stdlib only.

Started once per stage by :class:`localstage.runtime.EnvironmentLauncher` as ``python -I
-u -B _forkserver.py <socket-fd> <module> ...``. It imports the libraries the Lambda
Python runtime and the Powertools layer provide (boto3, Powertools, pydantic) and
parses botocore's data files once (``_botocore_data.py``), then forks one child per
execution environment on request. A child starts from those
imports only, never from a function's code: it takes the function's environment
variables, folder and pipes and runs ``_worker.py`` as a fresh interpreter would, so
the handler module and its module-level clients are created in each environment, as
on Lambda. What the fork saves is the library imports: most of a cold start's CPU,
which a burst of cold starts on a 2-core machine pays many times over.

Requests are JSON datagrams on a Unix ``SOCK_SEQPACKET`` socket carrying five file
descriptors (stdin, stdout, stderr, the request and response pipes); the answer
carries the child's pidfd, which the stage polls and signals (Linux only; elsewhere
the launcher starts each environment as its own process).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import runpy
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

WORKER_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_worker.py")
BOTOCORE_DATA_SCRIPT = os.path.join(os.path.dirname(WORKER_SCRIPT), "_botocore_data.py")
_MAX_REQUEST_BYTES = 1 << 20
_FDS_PER_REQUEST = 5


def _reap(*_: Any) -> None:
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def take_request(request: dict[str, Any], std_fds: Sequence[int]) -> None:
    """In a forked child: the request's stdin, stdout and stderr, default signal
    handling, and the request's environment variables and folder."""
    for fd, target in zip(std_fds, (0, 1, 2), strict=True):
        os.dup2(fd, target)
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    os.environ.clear()
    os.environ.update(request["environment"])
    os.chdir(request["cwd"])


def _become_environment(request: dict[str, Any], fds: list[int]) -> None:
    """In the child: take the environment's fds, variables and folder, run the worker."""
    *std_fds, to_worker_read, from_worker_write = fds
    take_request(request, std_fds)
    time.tzset()
    sys.argv = [WORKER_SCRIPT, str(to_worker_read), str(from_worker_write), *request["layers"]]
    runpy.run_path(WORKER_SCRIPT, run_name="__main__")


def run_then_exit(run: Callable[[], object]) -> NoReturn:
    """Run ``run`` in a forked child, then end the child, never returning to the caller.

    The exit status is 0 when ``run`` returns, a ``SystemExit``'s code, or 1 on any
    other exception (its traceback on stderr). ``os._exit``: the child must not run the
    parent's loop, ``atexit`` hooks or interpreter teardown.
    """
    code = 1
    try:
        run()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(code)


def _close_then_become(
    control: socket.socket,
    become: Callable[[dict[str, Any], list[int]], object],
    request: dict[str, Any],
    fds: list[int],
) -> None:
    """In the child: let go of the parent's control socket, then become what was asked."""
    control.close()
    become(request, fds)


def fork_per_request(
    control: socket.socket,
    *,
    fds_per_request: int,
    become: Callable[[dict[str, Any], list[int]], object],
) -> None:
    """Fork a child per request until the other end closes ``control``.

    A request is a JSON datagram carrying ``fds_per_request`` file descriptors; the
    child runs ``become(request, fds)`` (see :func:`run_then_exit`) and the answer is
    ``{"pid": N}`` with the child's pidfd, which the other end polls and signals.
    """
    # Children are reaped as they exit; the other end watches them through their pidfds.
    signal.signal(signal.SIGCHLD, _reap)
    # Ctrl-C reaches the terminal's whole process group: the stage stops, and this
    # process ends when the stage closes ``control``, not with a KeyboardInterrupt.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, _MAX_REQUEST_BYTES, fds_per_request)
        except OSError:
            return
        if not message:
            return
        request = json.loads(message)
        # No reaping between the fork and the pidfd: a child that exits at once must
        # still be there to open.
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        try:
            pid = os.fork()
            if pid == 0:
                run_then_exit(functools.partial(_close_then_become, control, become, request, fds))
            pidfd = os.pidfd_open(pid)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGCHLD})
        for fd in fds:
            os.close(fd)
        socket.send_fds(control, [json.dumps({"pid": pid}).encode()], [pidfd])
        os.close(pidfd)


def serve(control: socket.socket) -> None:
    """Fork an environment per request until the stage closes the socket."""
    fork_per_request(control, fds_per_request=_FDS_PER_REQUEST, become=_become_environment)


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    for module in sys.argv[2:]:
        # A library the virtualenv lacks is imported (and fails) in the function instead.
        with contextlib.suppress(ImportError):
            importlib.import_module(module)
    if "botocore" in sys.modules:
        # botocore's data files parsed once for every environment. Run from its path,
        # not imported: the environments' sys.modules hold no localstage module.
        runpy.run_path(BOTOCORE_DATA_SCRIPT)["share_parsed_data"]()
    serve(control)
    # The stage closed the socket: no interpreter teardown of the preloaded libraries
    # (a third of a second), the environments are processes of their own.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
