"""In the fork server: botocore's data files read once for every execution environment.

Each environment creates its own clients at module level, as on Lambda, in a new
boto3 session. botocore caches a service's parsed JSON models per session, so every
cold start read and parsed them again (the endpoints, partitions and the services'
models and rule sets) and listed botocore's ~470 service folders twice: about 85 ms
CPU of a two-client cold start, 110-140 ms in all, on this machine. The fork server
parses them once, before it forks; each child finds them in memory (copy on write).

Sharing the parsed data between sessions is what botocore already does between the
clients of one session, which get the same objects from the session's loader; a
service's client config is merged into copies (``botocore.translate``). The files are
keyed by path, so another ``AWS_DATA_PATH`` finds its own files. A file that is missing
is not remembered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Services whose models the fork server reads before it forks (those the stages'
#: functions call; another service is read by the environment that needs it).
SHARED_SERVICES = ("dynamodb", "sqs", "s3", "lambda", "scheduler", "events", "sns", "sts")


def share_parsed_data(services: Iterable[str] = SHARED_SERVICES) -> None:
    """Keep every JSON file botocore loads in this process, then load ``services``'."""
    import boto3.session
    from botocore import loaders

    parsed: dict[str, Any] = {}
    listed: dict[tuple[tuple[str, ...], str], list[str]] = {}
    load_file = loaders.JSONFileLoader.load_file
    list_available_services = loaders.Loader.list_available_services

    def load_file_once(file_loader: Any, file_path: str) -> Any:
        data = parsed.get(file_path)
        if data is None:
            data = load_file(file_loader, file_path)
            if data is not None:
                parsed[file_path] = data
        return data

    def list_available_services_once(loader: Any, type_name: str) -> list[str]:
        key = (tuple(loader.search_paths), type_name)
        if key not in listed:
            listed[key] = list(list_available_services(loader, type_name))
        return list(listed[key])

    setattr(loaders.JSONFileLoader, "load_file", load_file_once)  # noqa: B010
    setattr(loaders.Loader, "list_available_services", list_available_services_once)  # noqa: B010
    session: Any = boto3.session.Session(
        aws_access_key_id="fork-server",
        aws_secret_access_key="fork-server",
        region_name="us-east-1",
    )
    for service in services:
        session.client(service).close()
