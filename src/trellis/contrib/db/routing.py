"""Which database a statement runs on: named binds, read replicas, a per-request default.

One SQLAlchemy ``Session`` subclass does the choosing for async and sync sessions alike:

- a model with ``__bind_key__ = "analytics"`` (its table's ``info["bind_key"]``) goes to that
  database; any other to the session's default, ``"default"`` unless the tenant router picked
  another for this request;
- a read goes to the database's replica when it has one and the session has not written in
  the current transaction (reads after a write see it: they stay on the primary until the
  transaction ends); writes, ``SELECT ... FOR UPDATE`` and text SQL always go to the primary.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapper, Session, SessionTransaction
from sqlalchemy.sql import Delete, Insert, Select, Update
from sqlalchemy.sql.elements import ClauseElement
from sqlalchemy.sql.schema import Table

from trellis.contrib.db.lazy import defer_begin

__all__ = ["Binds", "RoutingSession", "has_writes"]

#: ``session.info`` key: the database name models without a bind key use (the tenant).
DEFAULT_BIND = "trellis.bind"
#: ``session.info`` key: set true to send every statement to the primary.
USE_PRIMARY = "trellis.primary"
#: ``session.info`` key: reads before the first write run without a transaction (see
#: ``trellis.contrib.db.lazy``).
LAZY_READS = "trellis.lazy_reads"
#: ``session.info`` key: the transaction has written (or run SQL that may write).
WROTE = "trellis.wrote"


class Binds:
    """The engines of one ``Database``, by name: a primary each and an optional replica."""

    __slots__ = ("primaries", "replicas")

    def __init__(self, primaries: Mapping[str, Engine], replicas: Mapping[str, Engine]) -> None:
        self.primaries = dict(primaries)
        self.replicas = dict(replicas)

    def primary(self, name: str) -> Engine:
        """The primary engine of database ``name``; ``LookupError`` names the known ones."""
        try:
            return self.primaries[name]
        except KeyError:
            known = ", ".join(sorted(self.primaries))
            raise LookupError(
                f"no database named {name!r}; Database(binds=...) defines: {known}"
            ) from None


def _bind_key_of_tables(tables: Iterable[Any]) -> str | None:
    for table in tables:
        if isinstance(table, Table):
            key = table.info.get("bind_key")
            if key is not None:
                return str(key)
    return None


def _bind_key(mapper: Mapper[Any] | None, clause: ClauseElement | None) -> str | None:
    if mapper is not None:
        key = getattr(mapper.local_table, "info", {}).get("bind_key")
        if key is None:
            key = getattr(mapper.class_, "__bind_key__", None)
        return None if key is None else str(key)
    if isinstance(clause, Insert | Update | Delete):
        return _bind_key_of_tables([clause.table])
    if isinstance(clause, Select):
        return _bind_key_of_tables(clause.get_final_froms())
    return None


def _is_read(clause: ClauseElement | None) -> bool:
    return isinstance(clause, Select) and clause._for_update_arg is None


class RoutingSession(Session):
    """A session that sends each statement to the right database (see the module docs)."""

    def __init__(self, *args: Any, routes: Binds, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._trellis_binds = routes

    def get_bind(
        self,
        mapper: Any = None,
        clause: Any = None,
        **kwargs: Any,
    ) -> Engine:
        """The engine for a statement: its model's database, the replica for plain reads."""
        if mapper is not None and not isinstance(mapper, Mapper):
            from sqlalchemy import inspect

            mapper = inspect(mapper).mapper if hasattr(mapper, "__mapper__") else None
        binds = self._trellis_binds
        info = self.info
        name = _bind_key(mapper, clause) or info.get(DEFAULT_BIND) or "default"
        if self._flushing or not _is_read(clause):
            info[WROTE] = True
        elif binds.replicas and not info.get(WROTE) and not info.get(USE_PRIMARY):
            replica = binds.replicas.get(name)
            if replica is not None:
                return replica
        return binds.primary(name)


def has_writes(session: Session) -> bool:
    """Whether the session's transaction has anything to commit.

    False when it only read: ending it with a rollback costs the same round trip as a commit
    and skips the commit's bookkeeping. Text SQL counts as a write (it may be one).
    """
    return bool(session.info.get(WROTE) or session.new or session.dirty or session.deleted)


@event.listens_for(RoutingSession, "after_begin")
def _lazy_begin(session: Session, transaction: SessionTransaction, connection: Any) -> None:
    if session.info.get(LAZY_READS):
        defer_begin(connection)


@event.listens_for(RoutingSession, "after_transaction_end")
def _forget_writes(session: Session, transaction: SessionTransaction) -> None:
    # The transaction that wrote is over: reads may go back to the replica.
    if transaction.parent is None:
        session.info.pop(WROTE, None)
