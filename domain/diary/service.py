"""Case diary entries and attachments of a cartella. Reads and writes follow the cartella's row filter (policy.py)
and are audited; the bytes of an attachment live in the blob store (domain.kernel.storage, installed by the
composition root), addressed by their checksum, never in the row."""
from __future__ import annotations

import hashlib
import uuid
from datetime import date, datetime, time, timedelta

import sqlalchemy as sa

from domain.diary import policy
from domain.diary.models import Attachment, DiaryEntry, EntryType
from domain.kernel import clock, history, storage, work_items
from domain.kernel.clock import ROME
from domain.kernel.errors import Invalid, NotFound
from domain.kernel.settings import get_settings
from domain.security import audit

FOLLOW_UP_KIND = "diary.follow_up"
ENTRY_NOT_FOUND = "Voce di diario non trovata."
ATTACHMENT_NOT_FOUND = "Allegato non trovato."
ATTACHMENT_KINDS = {"ads_decree", "signed_plan", "urgency_evidence", "consent_form", "medical_report", "other"}
_MAGIC = {
    "application/pdf": (b"%PDF-",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (b"PK\x03\x04",),
}


def _follow_up_at(day: date) -> datetime:
    return datetime.combine(day, time(9, 0), tzinfo=ROME)


async def _follow_up(session, *, cartella, entry: DiaryEntry, actor_id: uuid.UUID) -> None:
    """A follow-up date becomes a work item of the author (one per entry and date)."""
    if entry.follow_up_due is None:
        return
    await work_items.create(
        session, kind=FOLLOW_UP_KIND, title="Verifica concordata nel diario", source_type="diary_entry",
        source_id=entry.id, ambito_id=cartella.ambito_id, assignee_user_id=actor_id,
        due_at=_follow_up_at(entry.follow_up_due), person_id=cartella.person_id, cartella_id=cartella.id,
        dedup_key=f"{FOLLOW_UP_KIND}:{entry.id}:{entry.follow_up_due.isoformat()}")


def _check_times(occurred_at: datetime, follow_up_due: date | None) -> None:
    if occurred_at.tzinfo is None:
        raise Invalid("occurred_at", "serve una data e ora con fuso orario")
    if occurred_at > clock.now() + timedelta(minutes=5):
        raise Invalid("occurred_at", "la data dell'evento è nel futuro")
    if follow_up_due is not None and follow_up_due < clock.today_rome():
        raise Invalid("follow_up_due", "la data di verifica è già passata")


async def add_entry(session, *, principal, cartella_id: uuid.UUID, type: EntryType, occurred_at: datetime,
                    text: str, follow_up_due: date | None = None, amends_id: uuid.UUID | None = None) -> DiaryEntry:
    cartella = await policy.cartella(session, principal, cartella_id)
    _check_times(occurred_at, follow_up_due)
    if amends_id is not None:
        original = await session.get(DiaryEntry, amends_id)
        if original is None or original.cartella_id != cartella.id:
            raise Invalid("amends_id", "la voce da rettificare non appartiene a questa cartella")
    entry = DiaryEntry(cartella_id=cartella.id, type=type, occurred_at=occurred_at, text=text,
                       author_id=principal.user_id, amends_id=amends_id, follow_up_due=follow_up_due,
                       created_at=clock.now())
    session.add(entry)
    await session.flush()
    await history.record(session, entity_type="diary_entry", entity_id=entry.id, version=1,
                         action="amend" if amends_id else "create", data=history.snapshot(entry),
                         actor_id=principal.user_id)
    await _follow_up(session, cartella=cartella, entry=entry, actor_id=principal.user_id)
    audit.record(action="create", object_type="diary_entry", object_ids=[entry.id], person_ids=[cartella.person_id])
    return entry


async def edit_entry(session, *, principal, entry_id: uuid.UUID, changes: dict) -> DiaryEntry:
    entry = await session.get(DiaryEntry, entry_id, with_for_update=True)
    if entry is None:
        raise NotFound(ENTRY_NOT_FOUND)
    cartella = await policy.cartella(session, principal, entry.cartella_id, not_found=ENTRY_NOT_FOUND)
    policy.require_editable(entry, principal)
    _check_times(changes.get("occurred_at", entry.occurred_at), changes.get("follow_up_due", entry.follow_up_due))
    for k, v in changes.items():
        setattr(entry, k, v)
    entry.version += 1
    entry.updated_at = clock.now()
    await session.flush()
    await history.record(session, entity_type="diary_entry", entity_id=entry.id, version=entry.version,
                         action="update", data=history.snapshot(entry), actor_id=principal.user_id)
    await _follow_up(session, cartella=cartella, entry=entry, actor_id=principal.user_id)
    audit.record(action="update", object_type="diary_entry", object_ids=[entry.id], person_ids=[cartella.person_id])
    return entry


async def list_entries(session, *, principal, cartella_id: uuid.UUID, limit: int = 50,
                       before: tuple[datetime, uuid.UUID] | None = None) -> list[DiaryEntry]:
    cartella = await policy.cartella(session, principal, cartella_id)
    q = sa.select(DiaryEntry).where(DiaryEntry.cartella_id == cartella.id)
    if before:
        q = q.where(sa.tuple_(DiaryEntry.occurred_at, DiaryEntry.id) < sa.tuple_(sa.literal(before[0]),
                                                                                 sa.literal(before[1])))
    rows = list((await session.execute(q.order_by(DiaryEntry.occurred_at.desc(), DiaryEntry.id.desc())
                                       .limit(limit))).scalars())
    audit.record(action="list", object_type="diary_entry", object_ids=[e.id for e in rows],
                 person_ids=[cartella.person_id], result_count=len(rows))
    return rows


def _sniff_ok(content_type: str, data: bytes) -> bool:
    if content_type == "text/plain":
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return b"\x00" not in data
    return any(data.startswith(m) for m in _MAGIC.get(content_type, (b"",)))


async def add_attachment(session, *, principal, cartella_id: uuid.UUID, kind: str, filename: str,
                         content_type: str, data: bytes, owner_type: str | None = None,
                         owner_id: uuid.UUID | None = None) -> Attachment:
    s = get_settings()
    cartella = await policy.cartella(session, principal, cartella_id)
    content_type = (content_type or "").split(";")[0].strip().lower()
    if kind not in ATTACHMENT_KINDS:
        raise Invalid("kind", f"tipo di allegato non previsto (ammessi: {', '.join(sorted(ATTACHMENT_KINDS))})")
    if content_type not in s.attachment_content_types:
        raise Invalid("file", f"formato non ammesso: {content_type or 'sconosciuto'}")
    if len(data) == 0:
        raise Invalid("file", "file vuoto")
    if len(data) > s.attachment_max_bytes:
        raise Invalid("file", f"file troppo grande: massimo {s.attachment_max_bytes // (1024 * 1024)} MB")
    if not _sniff_ok(content_type, data):
        raise Invalid("file", "il contenuto non corrisponde al formato dichiarato")
    await policy.check_owner(session, cartella_id=cartella.id, owner_type=owner_type, owner_id=owner_id)
    safe_name = "".join(c for c in filename if c.isprintable() and c not in '/\\"')[:255] or "allegato"
    key = storage.blob_store().put(data)
    att = Attachment(cartella_id=cartella.id, owner_type=owner_type, owner_id=owner_id, kind=kind,
                     filename=safe_name, content_type=content_type, size_bytes=len(data),
                     sha256=hashlib.sha256(data).hexdigest(), storage_key=key, uploaded_by=principal.user_id,
                     uploaded_at=clock.now())
    session.add(att)
    await session.flush()
    audit.record(action="create", object_type="attachment", object_ids=[att.id], person_ids=[cartella.person_id])
    return att


async def list_attachments(session, *, principal, cartella_id: uuid.UUID) -> list[Attachment]:
    cartella = await policy.cartella(session, principal, cartella_id)
    rows = list((await session.execute(sa.select(Attachment).where(Attachment.cartella_id == cartella.id)
                                       .order_by(Attachment.uploaded_at.desc(), Attachment.id))).scalars())
    audit.record(action="list", object_type="attachment", object_ids=[a.id for a in rows],
                 person_ids=[cartella.person_id], result_count=len(rows))
    return rows


async def read_attachment(session, *, principal, attachment_id: uuid.UUID) -> tuple[Attachment, bytes]:
    att = await session.get(Attachment, attachment_id)
    if att is None:
        raise NotFound(ATTACHMENT_NOT_FOUND)
    cartella = await policy.cartella(session, principal, att.cartella_id, not_found=ATTACHMENT_NOT_FOUND)
    data = storage.blob_store().get(att.storage_key)
    audit.record(action="read", object_type="attachment", object_ids=[att.id], person_ids=[cartella.person_id])
    return att, data
