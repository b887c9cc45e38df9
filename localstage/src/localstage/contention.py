"""Whether DynamoDB transactions meet contention: never, or every third one, to test retries.

On AWS, "DynamoDB cancels a ``TransactWriteItems`` request under the following
circumstances: ... There is an ongoing ``TransactWriteItems`` operation that conflicts
with a concurrent ``TransactWriteItems`` request. In this case the ``TransactWriteItems``
operation fails with a ``TransactionCanceledException``" (DynamoDB API Reference,
TransactWriteItems,
https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html;
DynamoDB Developer Guide, "Transaction conflict handling in DynamoDB",
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/transaction-apis.html#transaction-conflict-handling).
localstage's moto process serves one request at a time, so two transactions never
overlap and that cancellation never happens by itself: code that retries it is never run.

By default (``none``) no transaction is cancelled; in ``conflicts`` mode the moto
process cancels the first attempt of every third transaction with a
``TransactionConflict`` (:mod:`localstage._moto_dynamodb_contention`), deterministically.

The mode is read here only (``LocalStage(contention=...)``, else
``$LOCALSTAGE_CONTENTION``); the stage hands it to its moto process in that same
variable (:meth:`ContentionPolicy.environment`), which reads it on each transaction.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

#: ``none`` (the default) or ``conflicts``; also how the moto process is told the mode.
CONTENTION_VARIABLE = "LOCALSTAGE_CONTENTION"
NONE = "none"
CONFLICTS = "conflicts"
MODES = (NONE, CONFLICTS)


@dataclass(frozen=True)
class ContentionPolicy:
    """The stage's contention mode."""

    mode: str = NONE

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(
                f"contention mode must be one of {', '.join(MODES)}, got {self.mode!r}"
            )

    @classmethod
    def resolve(cls, mode: str | None = None) -> ContentionPolicy:
        """``mode``, else ``$LOCALSTAGE_CONTENTION``, else ``none``.

        Examples
        --------
        >>> ContentionPolicy.resolve("conflicts").conflicts
        True
        """
        chosen = mode or os.environ.get(CONTENTION_VARIABLE) or NONE
        return cls(mode=chosen.strip().lower())

    @property
    def conflicts(self) -> bool:
        """Whether the moto process cancels some transactions with a TransactionConflict."""
        return self.mode == CONFLICTS

    def environment(self) -> dict[str, str]:
        """The variable that gives the moto process this mode (it replaces any inherited)."""
        return {CONTENTION_VARIABLE: self.mode}


def conflicts_in_this_process() -> bool:
    """Inside the moto process: whether its stage asked for ``conflicts``.

    Read on each call, not once: a moto server forked from the zygote takes its stage's
    environment after the zygote installed the patches (:mod:`localstage._moto_process`).
    An unknown value counts as ``none`` here; the stage refused it before starting moto.
    """
    return (os.environ.get(CONTENTION_VARIABLE) or "").strip().lower() == CONFLICTS
