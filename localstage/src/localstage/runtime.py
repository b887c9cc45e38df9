"""Lambda functions as worker processes: one process per execution environment.

A function gets a pool of environments, created on demand (cold start) up to its
reserved concurrency (or :data:`DEFAULT_MAX_ENVIRONMENTS`) and reused while warm.
Each environment sees only the function's template environment plus what the Lambda
runtime sets (``AWS_*`` pointing at moto, credentials of the function's role), imports
the handler from the function's own code folder, and is killed and replaced when an
invocation runs past the function's timeout.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from localstage._memory import SAMPLE_SECONDS, out_of_memory_error, resident_mb
from localstage.cloud import REGION, Credentials, close_fork_parent
from localstage.logs import LogSink

WORKER_SCRIPT = Path(__file__).resolve().parent / "_worker.py"
FORKSERVER_SCRIPT = Path(__file__).resolve().parent / "_forkserver.py"
#: What the Lambda Python runtime and the Powertools layer provide, imported once by the
#: fork server rather than by every cold start (see :mod:`localstage._forkserver`).
PRELOADED_MODULES = (
    "boto3",
    "botocore.client",
    "pydantic",
    "aws_lambda_powertools.logging",
    "aws_lambda_powertools.metrics",
    "aws_lambda_powertools.event_handler",
    "aws_lambda_powertools.utilities.batch",
    "aws_lambda_powertools.utilities.data_classes",
    "aws_lambda_powertools.utilities.parser",
)
DEFAULT_MAX_ENVIRONMENTS = 10
#: Lambda's limit for the init phase of an on-demand function.
INIT_TIMEOUT_SECONDS = 10.0
# On AWS every execution environment initialises on its own CPU. Here all of them share
# this machine's cores, so a burst of cold starts would slow each init down until it
# passed Lambda's 10 s init limit. Cold starts take turns, one per core; the time an
# invocation waits for its turn is like Lambda's scaling delay, and the init limit
# counts from the start of its own init.
_INIT_SLOTS = threading.BoundedSemaphore(max(1, os.cpu_count() or 1))
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_LOG_FORMAT",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass
class FunctionSpec:
    """What localstage needs to run one ``AWS::Lambda::Function``."""

    label: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    environment: dict[str, str]
    timeout_seconds: float
    memory_mb: int
    credentials: Credentials
    role_arn: str
    log_group: str
    reserved_concurrency: int | None = None
    runtime: str = "python3.14"
    log_format: str = "Text"
    #: The ``python/`` folders of its layers, in layer order: on ``sys.path`` after
    #: ``code_dir``, as Lambda puts ``/opt/python`` after the function's code.
    layer_dirs: tuple[Path, ...] = ()
    #: ``EphemeralStorage.Size``: the largest file the function may write (``/tmp``).
    ephemeral_storage_mb: int = 512


class FunctionThrottledError(Exception):
    """A synchronous invocation found every environment of its reserved concurrency busy."""


@dataclass
class InvocationResult:
    """The outcome of one invocation, as the Invoke API reports it."""

    request_id: str
    payload: Any = None
    #: ``{"errorType", "errorMessage", "stackTrace"}`` when the function failed.
    error: dict[str, Any] | None = None
    duration_ms: float = 0.0
    cold_start: bool = False

    @property
    def failed(self) -> bool:
        return self.error is not None


class _Process(Protocol):
    """An execution environment's process, as the runtime watches it."""

    @property
    def alive(self) -> bool: ...

    @property
    def pid(self) -> int: ...

    def kill(self) -> None:
        """Kill it (if still running) and wait until it is gone."""


class _ChildProcess:
    def __init__(self, popen: subprocess.Popen[bytes]) -> None:
        self.popen = popen

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def kill(self) -> None:
        if self.alive:
            self.popen.kill()
        self.popen.wait()


class _ForkedProcess:
    """A child of the fork server, watched through its pidfd (readable once it exits)."""

    def __init__(self, pid: int, pidfd: int) -> None:
        self._pid = pid
        self.pidfd = pidfd
        self._closed = False

    def _exited(self, timeout_ms: int) -> bool:
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return bool(poller.poll(timeout_ms))

    @property
    def pid(self) -> int:
        return self._pid

    @property
    def alive(self) -> bool:
        return not self._closed and not self._exited(0)

    def kill(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
        self._exited(5000)
        self._closed = True
        os.close(self.pidfd)


class _ForkServer:
    """A fork server process (:mod:`localstage._forkserver`) and its control socket.

    One per process and preload list, shared by every stage that process boots: it
    holds nothing of a stage (each request brings the environment's variables, folder
    and fds), and its children are processes of their own, so a stage that stops only
    stops using it. It ends when the process exits (its socket closes).
    """

    _registry_lock = threading.Lock()
    _servers: dict[tuple[str, ...], _ForkServer] = {}

    def __init__(self, preload: tuple[str, ...]) -> None:
        #: One request (send, then its answer) at a time on the socket.
        self.lock = threading.Lock()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-I",
                "-u",
                "-B",
                str(FORKSERVER_SCRIPT),
                str(theirs.fileno()),
                *preload,
            ],
            env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            pass_fds=(theirs.fileno(),),
        )
        theirs.close()
        self.control = ours

    @classmethod
    def shared(cls, preload: tuple[str, ...]) -> _ForkServer:
        """The process's running fork server for ``preload``, started if need be."""
        with cls._registry_lock:
            server = cls._servers.get(preload)
            if server is None or server.process.poll() is not None:
                if not cls._servers:
                    atexit.register(cls._close_all)
                server = cls._servers[preload] = cls(preload)
            return server

    @classmethod
    def _close_all(cls) -> None:
        with cls._registry_lock:
            servers, cls._servers = list(cls._servers.values()), {}
        for server in servers:
            close_fork_parent(server.control, server.process)


class EnvironmentLauncher:
    """Starts the stage's execution environments.

    On Linux they are forked from a fork server that has imported the runtime's and
    the Powertools layer's libraries (:mod:`localstage._forkserver`), so a cold start
    costs the handler's own imports only; elsewhere each is a new interpreter. The
    fork server is the process's (see :class:`_ForkServer`): a second stage booted by
    the same process does not import those libraries again.
    """

    def __init__(self, preload: tuple[str, ...] = PRELOADED_MODULES) -> None:
        self.preload = preload
        self._server: _ForkServer | None = None

    @property
    def forks(self) -> bool:
        """Whether environments are forked from the fork server (started, on Linux)."""
        return self._server is not None

    def start(self) -> None:
        if not hasattr(os, "pidfd_open") or self._server is not None:
            return
        self._server = _ForkServer.shared(self.preload)

    def launch(
        self,
        *,
        environment: dict[str, str],
        cwd: Path,
        layers: tuple[Path, ...],
        stdout: int,
        stderr: int,
        worker_fds: tuple[int, int],
    ) -> _Process:
        """Start ``_worker.py`` with ``environment`` in ``cwd``; the fds stay the caller's."""
        server = self._server
        if server is None:
            popen = subprocess.Popen(
                # -I: no PYTHONPATH, user site or script folder; -u: logs as they are
                # written; -B: no bytecode files in the asset folder.
                [
                    sys.executable,
                    "-I",
                    "-u",
                    "-B",
                    str(WORKER_SCRIPT),
                    *(str(fd) for fd in worker_fds),
                    *(str(path) for path in layers),
                ],
                env=environment,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                pass_fds=worker_fds,
            )
            return _ChildProcess(popen)
        request = {"environment": environment, "cwd": str(cwd), "layers": [str(p) for p in layers]}
        stdin = os.open(os.devnull, os.O_RDONLY)
        try:
            with server.lock:
                socket.send_fds(
                    server.control,
                    [json.dumps(request).encode()],
                    [stdin, stdout, stderr, *worker_fds],
                )
                message, fds, _, _ = socket.recv_fds(server.control, 4096, 1)
        finally:
            os.close(stdin)
        if not fds:
            raise RuntimeError("the environment fork server did not start an environment")
        return _ForkedProcess(json.loads(message)["pid"], fds[0])

    def close(self) -> None:
        """Stop using the fork server (the process's, which other stages may use)."""
        self._server = None


@dataclass
class _Environment:
    process: _Process
    to_worker: Any
    messages: queue.Queue[dict[str, Any]] = field(default_factory=queue.Queue)
    threads: list[threading.Thread] = field(default_factory=list)

    @property
    def alive(self) -> bool:
        return self.process.alive


class FunctionRuntime:
    """Runs one function's invocations in its own worker processes."""

    def __init__(
        self,
        spec: FunctionSpec,
        *,
        endpoint_url: str,
        logs: LogSink,
        launcher: EnvironmentLauncher | None = None,
    ) -> None:
        self.spec = spec
        #: Without a launcher, each environment is a new interpreter.
        self.launcher = launcher or EnvironmentLauncher()
        self.endpoint_url = endpoint_url
        self.logs = logs
        self.max_environments = spec.reserved_concurrency or DEFAULT_MAX_ENVIRONMENTS
        self._idle: list[_Environment] = []
        self._count = 0
        self._available = threading.Condition()
        self._closed = False
        self.invocations = 0
        #: Variables localstage adds for its own endpoints (``AWS_ENDPOINT_URL_LAMBDA``);
        #: set before the first environment starts.
        self.extra_environment: dict[str, str] = {}

    # ------------------------------------------------------------------ environment

    def environment(self) -> dict[str, str]:
        """Exactly what the function's process sees in ``os.environ``."""
        spec = self.spec
        env = {
            key: value for key, value in spec.environment.items() if key not in RESERVED_VARIABLES
        }
        env.update(
            {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "LANG": "C.UTF-8",
                "TZ": ":UTC",
                "_HANDLER": spec.handler,
                "LAMBDA_TASK_ROOT": str(spec.code_dir),
                "LAMBDA_RUNTIME_DIR": str(WORKER_SCRIPT.parent),
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
                "AWS_LAMBDA_FUNCTION_NAME": spec.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]")
                + uuid.uuid4().hex,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_LAMBDA_LOG_FORMAT": spec.log_format,
                "AWS_ENDPOINT_URL": self.endpoint_url,
                # DynamoDB Streams on moto need it (see docs toolchain notes).
                "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
                # Read (and removed) by _worker.py before the handler is imported.
                "_LOCALSTAGE_EPHEMERAL_STORAGE_MB": str(spec.ephemeral_storage_mb),
                **self.extra_environment,
                **spec.credentials.environment(),
            }
        )
        # X-Ray is not emulated: keep Powertools Tracer from looking for a daemon.
        env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
        return env

    def _start_environment(self) -> _Environment:
        to_worker_read, to_worker_write = os.pipe()
        from_worker_read, from_worker_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        stderr_read, stderr_write = os.pipe()
        try:
            process = self.launcher.launch(
                environment=self.environment(),
                cwd=self.spec.code_dir,
                layers=self.spec.layer_dirs,
                stdout=stdout_write,
                stderr=stderr_write,
                worker_fds=(to_worker_read, from_worker_write),
            )
        except BaseException:
            for fd in (to_worker_write, from_worker_read, stdout_read, stderr_read):
                os.close(fd)
            raise
        finally:
            # The environment holds its own copies: the pipes end when it does.
            for fd in (to_worker_read, from_worker_write, stdout_write, stderr_write):
                os.close(fd)
        environment = _Environment(process, os.fdopen(to_worker_write, "w", encoding="utf-8"))
        for fd in (stdout_read, stderr_read):
            stream = os.fdopen(fd, "rb")
            thread = threading.Thread(target=self._pump_logs, args=(stream,), daemon=True)
            thread.start()
            environment.threads.append(thread)
        reader = threading.Thread(
            target=self._read_messages,
            args=(os.fdopen(from_worker_read, "r", encoding="utf-8"), environment.messages),
            daemon=True,
        )
        reader.start()
        environment.threads.append(reader)
        return environment

    def _pump_logs(self, stream: Any) -> None:
        for raw in iter(stream.readline, b""):
            self.logs.write(self.spec.label, raw.decode("utf-8", errors="replace"))
        stream.close()

    @staticmethod
    def _read_messages(stream: Any, messages: queue.Queue[dict[str, Any]]) -> None:
        for line in stream:
            messages.put(json.loads(line))
        stream.close()
        messages.put({"exited": True})

    def _acquire(self, *, throttle: bool = False) -> tuple[_Environment | None, bool]:
        reserved = self.spec.reserved_concurrency
        if throttle and reserved == 0:
            raise FunctionThrottledError(self.spec.label)
        with self._available:
            while True:
                if self._closed:
                    raise RuntimeError(f"function {self.spec.label} is shut down")
                while self._idle:
                    environment = self._idle.pop()
                    if environment.alive:
                        return environment, False
                    self._count -= 1
                if self._count < self.max_environments:
                    self._count += 1
                    return None, True
                # Only a reserved concurrency throttles: the default cap of environments
                # is this machine's, not Lambda's (an account has 1,000 by default).
                if throttle and reserved is not None:
                    raise FunctionThrottledError(self.spec.label)
                self._available.wait()

    def _release(self, environment: _Environment | None) -> None:
        with self._available:
            if environment is not None and environment.alive and not self._closed:
                self._idle.append(environment)
            else:
                self._count -= 1
                if environment is not None:
                    _kill(environment)
            self._available.notify()

    # ------------------------------------------------------------------ invoke

    def invoke(
        self,
        event: Any,
        *,
        client_context: Any = None,
        request_id: str | None = None,
        trace_id: str | None = None,
        throttle: bool = False,
    ) -> InvocationResult:
        """Run one invocation (waits for a free environment, starts one if allowed).

        ``request_id`` (kept across the retries of an asynchronous event, as on AWS)
        and ``trace_id`` (the ``_X_AMZN_TRACE_ID`` the handler sees) are generated
        when not given. With ``throttle`` (a synchronous caller), a function whose
        reserved concurrency is all busy raises :class:`FunctionThrottledError` instead
        of waiting: Lambda answers such a caller 429 at once.
        """
        request_id = request_id or str(uuid.uuid4())
        environment, cold = self._acquire(throttle=throttle)
        result = InvocationResult(request_id, cold_start=cold)
        started = time.monotonic()
        init_ms = 0.0
        try:
            if environment is None:
                with _INIT_SLOTS:
                    init_started = time.monotonic()
                    environment = self._start_environment()
                    message = self._next(
                        environment, max(INIT_TIMEOUT_SECONDS, self.spec.timeout_seconds)
                    )
                    init_ms = (time.monotonic() - init_started) * 1000
                if "out_of_memory" in message:
                    result.error = out_of_memory_error(request_id)
                    _kill(environment)
                    return result
                if "init_error" in message or "ready" not in message:
                    result.error = message.get("init_error") or {
                        "errorType": "Runtime.ExitError",
                        "errorMessage": f"RequestId: {request_id} Error: Runtime exited "
                        "during init",
                    }
                    _kill(environment)
                    return result
            self.invocations += 1
            self.logs.platform(
                self.spec.label, "platform.start", {"requestId": request_id, "version": "$LATEST"}
            )
            deadline = time.time() + self.spec.timeout_seconds
            environment.to_worker.write(
                json.dumps(
                    {
                        "request_id": request_id,
                        "function_arn": self.spec.arn,
                        "deadline_ms": int(deadline * 1000),
                        "event": event,
                        "client_context": client_context,
                        "trace_id": trace_id
                        or f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
                    }
                )
                + "\n"
            )
            environment.to_worker.flush()
            message = self._next(environment, self.spec.timeout_seconds)
            if "out_of_memory" in message:
                result.error = out_of_memory_error(request_id)
                _kill(environment)
            elif "result" in message:
                result.payload = json.loads(message["result"])
            elif "error" in message:
                result.error = message["error"]
            elif "timeout" in message:
                result.error = {
                    "errorType": "Sandbox.Timedout",
                    "errorMessage": f"RequestId: {request_id} Error: Task timed out after "
                    f"{self.spec.timeout_seconds:.2f} seconds",
                }
                self.logs.write(
                    self.spec.label,
                    json.dumps(
                        {
                            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                            "type": "platform.runtimeDone",
                            "record": {"requestId": request_id, "status": "timeout"},
                        }
                    ),
                )
                _kill(environment)
            else:
                result.error = {
                    "errorType": "Runtime.ExitError",
                    "errorMessage": f"RequestId: {request_id} Error: Runtime exited",
                }
                _kill(environment)
            return result
        except BrokenPipeError:
            result.error = {"errorType": "Runtime.ExitError", "errorMessage": "Runtime exited"}
            if environment is not None:
                _kill(environment)
            return result
        finally:
            result.duration_ms = (time.monotonic() - started) * 1000 - init_ms
            self.logs.platform(
                self.spec.label,
                "platform.report",
                {
                    "requestId": request_id,
                    "metrics": {
                        "durationMs": round(result.duration_ms, 2),
                        "memorySizeMB": self.spec.memory_mb,
                        **({"initDurationMs": round(init_ms, 2)} if init_ms else {}),
                    },
                    "status": "error" if result.error else "success",
                },
            )
            self._release(environment)

    def close(self) -> None:
        with self._available:
            self._closed = True
            idle, self._idle = self._idle, []
            self._available.notify_all()
        for environment in idle:
            _kill(environment)

    def _next(self, environment: _Environment, timeout: float) -> dict[str, Any]:
        """The environment's next message; ``timeout`` or ``out_of_memory`` if none came.

        While it waits, the environment's resident memory is sampled against
        ``MemorySize`` (:mod:`localstage._memory`).
        """
        deadline = time.monotonic() + timeout
        limit = self.spec.memory_mb
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"timeout": True}
            try:
                return environment.messages.get(timeout=min(remaining, SAMPLE_SECONDS))
            except queue.Empty:
                pass
            used = resident_mb(environment.process.pid)
            if used is not None and used > limit:
                return {"out_of_memory": True}


def _kill(environment: _Environment) -> None:
    environment.process.kill()
    with contextlib.suppress(OSError):
        environment.to_worker.close()
