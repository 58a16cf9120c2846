"""What a device pulls of family tracing (issue 14): the tracing requests its caseworker follows while
they are open or matched, and their traces. A request handed to another caseworker moves between
their devices through ``ScopeChange`` rows naming it (models.tracing.change_request), as a
reassigned child does; a request reunified or closed is removed (the device needs it no longer).

What a lost phone reveals of a request: the inquirer's name, relationship and contact, the sought
child's names, sex, year of birth, place of origin and of separation, the notes, and the traces;
sealed in the device's store like every record, never the armed group (restricted)."""

from models.base import db
from models.tracing import Trace, TracingRequest
from sync.pull_rows import shape_of

LIVE = ("open", "matched")


def tracing_sources(user_id, full: bool) -> list[tuple]:
    """(model, condition, False) for sync.pull's sources: requests and traces are in scope through the
    request's caseworker, not through a child."""
    own = [TracingRequest.caseworker_id == user_id]
    if full:  # an empty device needs no removals: only live requests and their traces
        own += [TracingRequest.deleted_at.is_(None), TracingRequest.status.in_(LIVE)]
    traces = [Trace.request_id.in_(db.select(TracingRequest.id).where(*own))]
    if full:
        traces.append(Trace.deleted_at.is_(None))
    return [(TracingRequest, own, False), (Trace, traces, False)]


def request_scope_events(scope_changes, user_id, removal) -> list[tuple]:
    """Events (seq, 1, entity, id, item) for the requests handed to or taken from ``user_id``:
    a removal for the request and its traces, or all of them as they are now (if still theirs)."""
    events = []
    removed = {sc.tracing_request_id: sc.seq for sc in scope_changes if sc.kind == "remove"}
    added = {sc.tracing_request_id: sc.seq for sc in scope_changes if sc.kind == "add"}
    if removed:
        for model, key in ((TracingRequest, TracingRequest.id), (Trace, Trace.request_id)):
            entity = "tracing_request" if model is TracingRequest else "trace"
            events += [(removed[request_id], 1, entity, record_id, removal(entity, record_id, version))
                       for record_id, version, request_id in db.session.execute(
                           db.select(model.id, model.version, key).where(key.in_(list(removed))))]
    if added:
        still_ours = list(db.session.execute(db.select(TracingRequest.id).where(
            TracingRequest.id.in_(list(added)), TracingRequest.caseworker_id == user_id,
            TracingRequest.deleted_at.is_(None), TracingRequest.status.in_(LIVE))).scalars())
        for model, key in ((TracingRequest, TracingRequest.id), (Trace, Trace.request_id)):
            shape = shape_of(model)
            at = shape.id_at if model is TracingRequest else shape.keys.index("request_id")
            rows = db.session.execute(db.select(*shape.columns).where(key.in_(still_ours), model.deleted_at.is_(None)))
            events += [(added[row[at]], 1, shape.entity, row[shape.id_at], (shape, row)) for row in rows]
    return events
