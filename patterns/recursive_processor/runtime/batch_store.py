"""Recursive processor: the run table, where every change of a run is conditional.

A hop claims its run (``lease_owner`` until the invocation's deadline), then commits a
checkpoint or ends the run with a write conditional on that claim and on the hop and
offset it started from. A duplicate or retried invocation of the hop finds the claim
held or the hop moved on, and changes nothing: it can neither process the hop a second
time nor fork the chain.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from batch_models import (
    HopCommit,
    HopState,
    ObjectCreated,
    ProcessorSettings,
    RunEnding,
    RunStatus,
    epoch_ms,
)
from batch_records import HopTally
from handler_kit import ttl
from handler_kit.clock import iso_timestamp
from handler_kit.keyed_table import KeyedTable

#: The condition of every write by the invocation that claimed the hop.
_OWNED = "#status = :running AND hop = :hop AND #offset = :offset AND lease_owner = :owner"
#: Adds a hop's tally to the run's totals and gives the claim back.
_ADD_TALLY = (
    "ADD records :records, errors :errors, amount_total :amount, "
    "checksum_sum :checksum, bytes_read :bytes_read REMOVE lease_owner, lease_expires_ms"
)


def new_run_item(
    created: ObjectCreated, *, now: datetime, settings: ProcessorSettings
) -> dict[str, Any]:
    """The run record of a new run: RUNNING at hop 1, offset 0, nothing counted yet.

    Parameters
    ----------
    created : ObjectCreated
        The object the run reads.
    now : datetime
        When the run starts.
    settings : ProcessorSettings
        For the record's retention (``expires_at``).

    Returns
    -------
    dict
        The item to store.
    """
    return {
        "run_id": created.run_id,
        "status": RunStatus.RUNNING.value,
        "bucket": created.bucket,
        "key": created.key,
        "etag": created.etag,
        "size": created.size,
        "sequencer": created.sequencer,
        "hop": 1,
        "offset": 0,
        "dispatched_hop": 0,
        "records": 0,
        "errors": 0,
        "amount_total": 0,
        "checksum_sum": 0,
        "bytes_read": 0,
        "error_objects": [],
        "started_at": iso_timestamp(now),
        "started_at_ms": epoch_ms(now),
        "updated_at": iso_timestamp(now),
        "expires_at": math.floor(now.timestamp()) + settings.run_retention_days * 86_400,
    }


class RunStore(KeyedTable):
    """The run table (partition key ``run_id`` (S), TTL attribute ``expires_at``).

    Every change of a run is conditional. Made as :class:`KeyedTable` is (a client and
    the table name).
    """

    key_name = "run_id"
    attribute_names = ("status", "offset", "key", "size")
    ttl_attribute = ttl.TTL_ATTRIBUTE

    def create(self, item: Mapping[str, Any], *, now: datetime) -> bool:
        """Store a new run; False if a live run with this id exists (a duplicate event).

        A run expired at ``now`` (TTL pending) is replaced as if it were deleted.
        """
        return self.put_new(item, now=now)

    def claim(
        self, run_id: str, *, hop: int, offset: int, owner: str, now_ms: int, expires_ms: int
    ) -> bool:
        """Take the hop for this invocation until ``expires_ms`` (its deadline).

        Fails while another invocation holds a live claim on the run, so a
        duplicate delivered during the hop does nothing. A claim left by an
        invocation that timed out has expired by the time Lambda retries it.

        Parameters
        ----------
        run_id : str
            The run.
        hop, offset : int
            The hop and the offset it starts at; the run must be RUNNING there.
        owner : str
            The claim's owner (unique per invocation).
        now_ms, expires_ms : int
            Now and the claim's expiry, in epoch milliseconds.

        Returns
        -------
        bool
            Whether this invocation holds the hop now.
        """
        return self._changed(
            run_id,
            update="SET lease_owner = :owner, lease_expires_ms = :expires",
            condition=(
                "#status = :running AND hop = :hop AND #offset = :offset AND "
                "(attribute_not_exists(lease_owner) OR lease_expires_ms < :now"
                # This very call, retried by the SDK after its reply was lost: the owner
                # is unique per invocation, so no other call can match it.
                " OR lease_owner = :owner)"
            ),
            values={
                ":owner": owner,
                ":expires": expires_ms,
                ":running": RunStatus.RUNNING.value,
                ":hop": hop,
                ":offset": offset,
                ":now": now_ms,
            },
        )

    def release(self, run_id: str, *, owner: str) -> None:
        """Give the claim back (after an error), so Lambda's retry can take the hop."""
        self._changed(
            run_id,
            update="REMOVE lease_owner, lease_expires_ms",
            condition="lease_owner = :owner",
            values={":owner": owner},
        )

    def checkpoint(self, state: HopState, commit: HopCommit) -> bool:
        """Commit the hop: move to ``commit.new_offset`` and hop + 1, add the hop's tally.

        Parameters
        ----------
        state : HopState
            The claimed hop (its run, hop, offset and claim make the condition).
        commit : HopCommit
            The new offset, the tally and the hop's errors object.

        Returns
        -------
        bool
            False if the claim was lost (nothing was written).
        """
        update = (
            "SET hop = :next, #offset = :new_offset, updated_at = :now, committed_by = :owner "
            f"{_ADD_TALLY}"
        )
        values: dict[str, Any] = {
            ":next": state.hop + 1,
            ":new_offset": commit.new_offset,
            ":now": iso_timestamp(commit.now),
            **self._tally_values(commit.tally),
            **self._owned_values(state),
        }
        if commit.errors_key is not None:
            update = update.replace(
                "updated_at = :now,",
                "updated_at = :now, error_objects = list_append(error_objects, :errors_key),",
            )
            values[":errors_key"] = [commit.errors_key]
        return self._commit(state, update=update, values=values)

    def finish(self, state: HopState, commit: HopCommit, ending: RunEnding) -> bool:
        """End the run DONE or FAILED, adding this hop's tally (empty if discarded).

        Parameters
        ----------
        state : HopState
            The claimed hop (its run, hop, offset and claim make the condition).
        commit : HopCommit
            The last offset, the tally and the hop's errors object.
        ending : RunEnding
            The final status, the duration, and the summary or the reason.

        Returns
        -------
        bool
            False if the claim was lost (nothing was written).
        """
        update = (
            "SET #status = :status, hops = :hop, #offset = :new_offset, updated_at = :now, "
            "finished_at = :now, duration_ms = :duration, committed_by = :owner"
        )
        values: dict[str, Any] = {
            ":status": ending.status.value,
            ":new_offset": commit.new_offset,
            ":now": iso_timestamp(commit.now),
            ":duration": ending.duration_ms,
            **self._owned_values(state),
            **self._tally_values(commit.tally),
        }
        if commit.errors_key is not None:
            update += ", error_objects = list_append(error_objects, :errors_key)"
            values[":errors_key"] = [commit.errors_key]
        if ending.summary_key is not None:
            update += ", summary_key = :summary_key"
            values[":summary_key"] = ending.summary_key
        if ending.reason is not None:
            update += ", reason = :reason"
            values[":reason"] = dict(ending.reason)
        update += f" {_ADD_TALLY}"
        return self._commit(state, update=update, values=values)

    def _commit(self, state: HopState, *, update: str, values: Mapping[str, Any]) -> bool:
        """A hop's commit, conditional on its claim; True also when it had landed already.

        The SDK retries a write whose reply was lost (a read timeout, a dropped
        connection, a 500 after the write); the retry then fails its condition on the
        commit it repeats. Read as "claim lost", the hop would send no next hop and the run
        would stay RUNNING with nothing in flight. ``committed_by`` (the claim's owner,
        unique per invocation) tells this invocation's own commit from another's.
        """
        return self._changed_or_landed(
            state.run_id,
            update=update,
            condition=_OWNED,
            values=values,
            mark=("committed_by", state.owner),
        )

    def mark_dispatched(self, run_id: str, *, hop: int) -> None:
        """Record that hop ``hop`` was handed to Lambda (it is not sent again)."""
        self._changed(
            run_id,
            update="SET dispatched_hop = :hop",
            condition="dispatched_hop < :hop",
            values={":hop": hop},
        )

    @staticmethod
    def _owned_values(state: HopState) -> dict[str, Any]:
        return {
            ":running": RunStatus.RUNNING.value,
            ":hop": state.hop,
            ":offset": state.offset,
            ":owner": state.owner,
        }

    @staticmethod
    def _tally_values(tally: HopTally) -> dict[str, Any]:
        return {
            ":records": tally.records,
            ":errors": tally.errors,
            ":amount": tally.amount,
            ":checksum": tally.checksum,
            ":bytes_read": tally.bytes_read,
        }
