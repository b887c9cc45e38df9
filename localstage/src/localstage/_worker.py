"""One Lambda execution environment: imports a handler once and runs invocations.

Started by :mod:`localstage.runtime` as ``python -I _worker.py <read-fd> <write-fd>
[<layer-dir> ...]`` (isolated: no script folder, no PYTHONPATH) with exactly the
function's environment; the layers' ``python/`` folders come as arguments.
Requests and responses are JSON lines on the two pipes; the handler's stdout and
stderr are the function's log stream. Module state lives as long as the process,
like a warm execution environment.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any


class LambdaContext:
    """The context object the Python runtime passes to a handler."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.aws_request_id: str = request["request_id"]
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn: str = request["function_arn"]
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = request.get("client_context")
        self.tenant_id = None
        self._deadline_ms: int = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))


def _error(exc: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(exc.__traceback__),
    }


def _log_error(error: dict[str, Any], request_id: str | None) -> None:
    # What the runtime writes for an uncaught exception (JSON log format).
    record = {
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "level": "ERROR",
        "message": error["errorMessage"],
        "errorType": error["errorType"],
        "stackTrace": error["stackTrace"],
        "requestId": request_id,
    }
    print(json.dumps(record), file=sys.stderr, flush=True)


#: Audit events of calls that change the file system, and which of their arguments
#: are the paths they change.
_WRITE_EVENTS: dict[str, tuple[int, ...]] = {
    "os.mkdir": (0,),
    "os.rmdir": (0,),
    "os.remove": (0,),
    "os.rename": (0, 1),
    "os.symlink": (1,),
    "os.link": (1,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.truncate": (0,),
    "os.utime": (0,),
    "os.mkfifo": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _read_only(roots: list[str]) -> None:
    """Make writes under ``roots`` fail with EROFS, as in Lambda's /var/task and /opt.

    Lambda mounts the function's code (and its layers) read only. The folders here are
    the assembly's own, writable, and the stage may run as root, so file modes cannot
    stand in for the mount: an audit hook refuses every Python-level write instead
    (native extensions writing on their own are not caught).
    """
    prefixes = tuple(os.path.join(os.path.realpath(root), "") for root in roots)

    def refuse(path: object) -> None:
        if isinstance(path, str | bytes | os.PathLike):
            real = os.path.realpath(os.fsdecode(path))
            if os.path.join(real, "").startswith(prefixes):
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fsdecode(path))

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            writes = isinstance(flags, int) and flags & _WRITE_FLAGS
            if writes or (isinstance(mode, str) and any(c in mode for c in "wax+")):
                refuse(path)
        elif event in _WRITE_EVENTS:
            for index in _WRITE_EVENTS[event]:
                if index < len(args):
                    refuse(args[index])

    sys.addaudithook(hook)


def _limit_storage() -> None:
    """No file may grow past the function's ephemeral storage (``/tmp``'s size).

    Lambda's /tmp is a file system of ``EphemeralStorage.Size`` MB; here /tmp is the
    machine's, so its size cannot be set without privileges. ``RLIMIT_FSIZE`` bounds
    each file instead (a write past it fails with EFBIG where Lambda's fails with
    ENOSPC; Python ignores SIGXFSZ): one file cannot exceed what the whole /tmp holds
    on Lambda, though several files together can.
    """
    size_mb = int(os.environ.pop("_LOCALSTAGE_EPHEMERAL_STORAGE_MB", "512"))
    limit = size_mb * 1024 * 1024
    _soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))


def main() -> None:
    reader = os.fdopen(int(sys.argv[1]), "r", encoding="utf-8")
    writer = os.fdopen(int(sys.argv[2]), "w", encoding="utf-8")

    def send(message: dict[str, Any]) -> None:
        writer.write(json.dumps(message, default=str) + "\n")
        writer.flush()

    # The function's code first, then its layers (Lambda's /var/task, then /opt/python).
    sys.path[0:0] = [os.environ["LAMBDA_TASK_ROOT"], *sys.argv[3:]]
    _limit_storage()
    _read_only([os.environ["LAMBDA_TASK_ROOT"], *sys.argv[3:]])
    module_name, _, function_name = os.environ["_HANDLER"].rpartition(".")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
        handler = getattr(module, function_name)
    except ModuleNotFoundError as exc:
        error = _error(exc, "Runtime.ImportModuleError")
        _log_error(error, None)
        send({"init_error": error})
        return
    except AttributeError as exc:
        error = _error(exc, "Runtime.HandlerNotFound")
        _log_error(error, None)
        send({"init_error": error})
        return
    except Exception as exc:
        error = _error(exc)
        _log_error(error, None)
        send({"init_error": error})
        return
    send({"ready": True})

    for line in reader:
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace_id", "")
        context = LambdaContext(request)
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            error = _error(exc)
            _log_error(error, context.aws_request_id)
            send({"error": error})
            continue
        try:
            payload = json.dumps(result)
        except (TypeError, ValueError) as exc:
            error = {
                "errorMessage": f"Unable to marshal response: {exc}",
                "errorType": "Runtime.MarshalError",
                "stackTrace": [],
            }
            _log_error(error, context.aws_request_id)
            send({"error": error})
            continue
        send({"result": payload})


if __name__ == "__main__":
    main()
