"""moto in its own process on loopback: the AWS APIs the stage's resources live in.

moto runs in a child process so its global state never mixes with anything else in
the caller's process (for example unit tests that use ``mock_aws``). IAM is enforced
once the stage is deployed: every later request must be signed by a known identity
whose policies allow the action (:meth:`MotoCloud.enforce_iam`).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import urllib.request
from dataclasses import dataclass
from typing import IO, Any, Protocol

import boto3
import botocore.session
from botocore.config import Config

from localstage.assembly import PROJECT_ROOT
from localstage.contention import CONTENTION_VARIABLE, ContentionPolicy

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"
PARTITION = "aws"
ADMIN_USER = "localstage-admin"


class CloudError(RuntimeError):
    """The moto server could not be started or configured."""


@dataclass(frozen=True)
class Credentials:
    """An access key (with a session token for an assumed role) and whose it is."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None
    principal_arn: str

    def environment(self) -> dict[str, str]:
        env = {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
        }
        if self.session_token:
            env["AWS_SESSION_TOKEN"] = self.session_token
        return env


class _ServerProcess(Protocol):
    """The moto server's process, as :class:`MotoCloud` talks to it."""

    stdin: IO[str] | None
    stdout: IO[str] | None

    def wait(self, timeout: float | None = None) -> int | None: ...

    def kill(self) -> None: ...


class _ForkedServer:
    """A moto server forked by the zygote, watched through its pidfd."""

    def __init__(self, pidfd: int, stdin: IO[str], stdout: IO[str]) -> None:
        self.pidfd = pidfd
        self.stdin: IO[str] | None = stdin
        self.stdout: IO[str] | None = stdout

    def wait(self, timeout: float | None = None) -> int | None:
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        if not poller.poll(None if timeout is None else int(timeout * 1000)):
            raise subprocess.TimeoutExpired("moto server", timeout or 0)
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        return 0

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError, OSError):
            signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)


class _Zygote:
    """A process that imported moto and forks a moto server per stage (Linux only).

    One per process that boots stages (see :mod:`localstage._moto_process`); started
    with the environment of the first launch, and restarted if a later launch's
    environment differs (moto reads some settings when imported).
    """

    _lock = threading.Lock()
    _current: _Zygote | None = None

    def __init__(self, environment: dict[str, str]) -> None:
        self.environment = environment
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.control = ours
        with theirs:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "localstage._moto_process",
                    "--zygote",
                    str(theirs.fileno()),
                ],
                cwd=PROJECT_ROOT,
                env=environment,
                stdin=subprocess.DEVNULL,
                pass_fds=[theirs.fileno()],
            )

    @classmethod
    def fork(cls, environment: dict[str, str]) -> _ForkedServer | None:
        """A new moto server with ``environment``; None where the zygote cannot serve."""
        if not hasattr(os, "pidfd_open") or not hasattr(socket, "send_fds"):
            return None
        # Variables moto reads on use, and those pytest sets per test, need no new zygote.
        key = {
            name: value
            for name, value in environment.items()
            if name not in _READ_ON_USE and not name.startswith("PYTEST_")
        }
        with cls._lock:
            zygote = cls._current
            if zygote is None or zygote.environment != key or zygote.process.poll() is not None:
                if zygote is not None:
                    zygote.close()
                else:
                    atexit.register(_close_zygote)
                zygote = cls._current = _Zygote(key)
            return zygote._fork(environment)

    def _fork(self, environment: dict[str, str]) -> _ForkedServer | None:
        stdin_read, stdin_write = os.pipe()
        stdout_read, stdout_write = os.pipe()
        try:
            request = {"environment": environment, "cwd": str(PROJECT_ROOT)}
            socket.send_fds(
                self.control, [json.dumps(request).encode()], [stdin_read, stdout_write, 2]
            )
            _, fds, _, _ = socket.recv_fds(self.control, 4096, 1)
        except OSError:
            fds = []
        finally:
            os.close(stdin_read)
            os.close(stdout_write)
        if not fds:
            os.close(stdin_write)
            os.close(stdout_read)
            return None
        return _ForkedServer(
            fds[0],
            os.fdopen(stdin_write, "w"),
            os.fdopen(stdout_read, "r"),
        )

    def close(self) -> None:
        close_fork_parent(self.control, self.process)


#: Read by moto when a backend is created, or by a patch on each request (the contention
#: mode), never when moto is imported: a server forked from the zygote reads its own.
_READ_ON_USE = frozenset({"MOTO_IAM_LOAD_MANAGED_POLICIES", CONTENTION_VARIABLE})


def close_fork_parent(control: socket.socket, process: subprocess.Popen[Any]) -> None:
    """End a process that forks children on requests sent over ``control``.

    Closing the socket ends its loop (it reads the end of the requests) and it exits;
    one that has not after 5 s is killed. Its children are processes of their own.
    """
    control.close()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _close_zygote() -> None:
    with _Zygote._lock:
        if _Zygote._current is not None:
            _Zygote._current.close()
            _Zygote._current = None


class MotoCloud:
    """A moto server process plus clients for it.

    Parameters
    ----------
    contention:
        Whether the server cancels some DynamoDB transactions with a TransactionConflict
        (see :mod:`localstage.contention`); ``none`` by default, whatever
        ``$LOCALSTAGE_CONTENTION`` says (the stage resolves the mode and passes it here).

    Usage (needs a running stage or AWS, so not a doctest)::

        with MotoCloud() as cloud:
            cloud.client("sqs").create_queue(QueueName="q")
    """

    def __init__(self, contention: ContentionPolicy | None = None) -> None:
        self.contention = contention or ContentionPolicy()
        self._process: _ServerProcess | None = None
        self.endpoint_url = ""
        self.admin: Credentials | None = None
        self.iam_enforced = False
        self._session = boto3.session.Session(
            region_name=REGION, botocore_session=botocore.session.Session()
        )
        self._clients_lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}

    def launch(self, *, aws_managed_policies: bool = False) -> None:
        """Start the server process without waiting for it (it boots meanwhile).

        ``aws_managed_policies`` loads AWS's managed policies into IAM (seconds of
        start-up): only needed when a template attaches one.
        """
        if self._process is not None:
            return
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "MOTO_")) and key != "INITIAL_NO_AUTH_ACTION_COUNT"
        }
        if aws_managed_policies:
            env["MOTO_IAM_LOAD_MANAGED_POLICIES"] = "true"
        # The server's patch reads the mode from its environment (_moto_dynamodb_contention).
        env.update(self.contention.environment())
        # Forked from the zygote where it can (moto already imported), else a new process.
        self._process = _Zygote.fork(env) or subprocess.Popen(
            [sys.executable, "-m", "localstage._moto_process"],
            cwd=PROJECT_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def start(self) -> MotoCloud:
        """Wait until the server answers and create the admin identity."""
        self.launch()
        assert self._process is not None
        if self.endpoint_url:
            return self
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        if not line:
            raise CloudError("the moto server process exited before it was ready")
        port = json.loads(line)["port"]
        self.endpoint_url = f"http://127.0.0.1:{port}"
        self.admin = self._create_admin()
        return self

    def _create_admin(self) -> Credentials:
        # Before IAM is enforced anything goes: create the identity localstage itself
        # (deployment, pollers, the test target) uses afterwards.
        iam = self.client("iam", credentials=None)
        iam.create_user(UserName=ADMIN_USER)
        iam.put_user_policy(
            UserName=ADMIN_USER,
            PolicyName="everything",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
                }
            ),
        )
        key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        return Credentials(
            key["AccessKeyId"],
            key["SecretAccessKey"],
            None,
            f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/{ADMIN_USER}",
        )

    def assume_role(self, role_arn: str, session_name: str) -> Credentials:
        """Credentials of ``role_arn``, as Lambda gets them for a function's role.

        Must run before :meth:`enforce_iam` (the roles trust only AWS services).
        """
        if self.iam_enforced:
            raise CloudError("assume roles before IAM is enforced")
        sts = self.client("sts")
        response = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])
        credentials = response["Credentials"]
        return Credentials(
            credentials["AccessKeyId"],
            credentials["SecretAccessKey"],
            credentials["SessionToken"],
            response["AssumedRoleUser"]["Arn"],
        )

    def enforce_iam(self) -> None:
        """From now on every request must be signed by an identity allowed to make it."""
        request = urllib.request.Request(
            f"{self.endpoint_url}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        self.iam_enforced = True

    def client(self, service: str, credentials: Credentials | str | None = "admin") -> Any:
        """A boto3 client for ``service`` on moto (the admin's unless told otherwise)."""
        chosen = self.admin if credentials == "admin" else credentials
        assert not isinstance(chosen, str)
        key = (service, chosen.access_key_id if chosen else "anonymous")
        with self._clients_lock:
            if key not in self._clients:
                # One botocore session for every client: service models load once.
                self._clients[key] = self._session.client(  # type: ignore[call-overload]
                    service,
                    endpoint_url=self.endpoint_url,
                    aws_access_key_id=chosen.access_key_id if chosen else "localstage",
                    aws_secret_access_key=chosen.secret_access_key if chosen else "localstage",
                    aws_session_token=chosen.session_token if chosen else None,
                    config=Config(
                        retries={"mode": "standard", "total_max_attempts": 3},
                        account_id_endpoint_mode="disabled",
                    ),
                )
            return self._clients[key]

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> MotoCloud:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
