"""Case diary and attachments through the API: author-only edits for 24 h, amendments, follow-ups, allow-listed
uploads stored outside the rows, reads under the cartella's rules."""
import hashlib
import uuid
from datetime import timedelta

import pytest
import sqlalchemy as sa

from domain.diary.models import Attachment, DiaryEntry
from domain.kernel.models import WorkItem
from domain.security.models import Role
from tests.factories.cartelle import create_cartella, create_person
from tests.support import bearer, make_user

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


async def _setup(session):
    person = await create_person(session, comune="comune-offanengo")
    cartella = await create_cartella(session, person=person)
    author = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    colleague = await make_user(session, Role.comune_social_worker, "comune-offanengo")
    outsider = await make_user(session, Role.comune_social_worker, "comune-crema")
    return person, cartella, author, colleague, outsider


def _entry(clock, **kw):
    body = {"type": "visita_domiciliare", "occurred_at": (clock.now() - timedelta(hours=1)).isoformat(),
            "text": "Visita domiciliare: la signora vive sola, scale ripide."}
    body.update(kw)
    return body


class TestDiary:
    async def test_author_edits_within_24h_then_must_amend(self, client, session, clock):
        _, cartella, author, colleague, _ = await _setup(session)
        r = await client.post(f"/api/cartelle/{cartella.id}/diary", json=_entry(clock), headers=bearer(author))
        assert r.status_code == 201, r.text
        entry = r.json()
        assert entry["type_label"] == "Visita domiciliare" and entry["version"] == 1

        r = await client.patch(f"/api/diary/{entry['id']}", json={"text": "Testo corretto"}, headers=bearer(author))
        assert r.status_code == 200 and r.json()["text"] == "Testo corretto" and r.json()["version"] == 2

        r = await client.patch(f"/api/diary/{entry['id']}", json={"text": "Altro"}, headers=bearer(colleague))
        assert r.status_code == 403

        clock.advance(hours=25)
        r = await client.patch(f"/api/diary/{entry['id']}", json={"text": "Troppo tardi"}, headers=bearer(author))
        assert r.status_code == 409
        assert r.headers["content-type"].startswith("application/problem+json")

        r = await client.post(f"/api/cartelle/{cartella.id}/diary",
                              json=_entry(clock, type="nota", text="Rettifica: le scale sono due.",
                                          amends_id=entry["id"]), headers=bearer(author))
        assert r.status_code == 201 and r.json()["amends_id"] == entry["id"]
        listed = (await client.get(f"/api/cartelle/{cartella.id}/diary", headers=bearer(colleague))).json()
        assert [e["text"] for e in listed][:2] == ["Rettifica: le scale sono due.", "Testo corretto"]

    async def test_follow_up_becomes_a_work_item_of_the_author(self, client, session, clock):
        _, cartella, author, _, _ = await _setup(session)
        due = (clock.now() + timedelta(days=7)).date().isoformat()
        r = await client.post(f"/api/cartelle/{cartella.id}/diary", json=_entry(clock, follow_up_due=due),
                              headers=bearer(author))
        assert r.status_code == 201
        items = (await session.execute(sa.select(WorkItem).where(
            WorkItem.kind == "diary.follow_up", WorkItem.source_id == uuid.UUID(r.json()["id"])))).scalars().all()
        assert len(items) == 1 and items[0].assignee_user_id == author.id
        queue = (await client.get("/api/work-items/mine", params={"kind": "diary.follow_up"},
                                  headers=bearer(author))).json()
        ids = [i["id"] for i in (queue["items"] if isinstance(queue, dict) else queue)]
        assert str(items[0].id) in ids

    async def test_bad_input_names_the_field_and_writes_nothing(self, client, session, clock):
        _, cartella, author, _, _ = await _setup(session)
        before = (await session.execute(sa.select(sa.func.count()).select_from(DiaryEntry))).scalar()
        cases = [
            (_entry(clock, type="chiacchierata"), "type"),
            (_entry(clock, occurred_at=(clock.now() + timedelta(days=2)).isoformat()), "occurred_at"),
            ({**_entry(clock), "umore": "buono"}, "umore"),
            (_entry(clock, follow_up_due="2020-01-01"), "follow_up_due"),
        ]
        for body, field in cases:
            r = await client.post(f"/api/cartelle/{cartella.id}/diary", json=body, headers=bearer(author))
            assert r.status_code == 422, (field, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert any(e["field"] == field for e in r.json()["errors"]), r.json()
        after = (await session.execute(sa.select(sa.func.count()).select_from(DiaryEntry))).scalar()
        assert after == before

    async def test_outside_scope_is_not_found(self, client, session, clock):
        _, cartella, _, _, outsider = await _setup(session)
        r = await client.get(f"/api/cartelle/{cartella.id}/diary", headers=bearer(outsider))
        assert r.status_code == 404
        r = await client.post(f"/api/cartelle/{cartella.id}/diary", json=_entry(clock), headers=bearer(outsider))
        assert r.status_code == 404


class TestAttachments:
    async def test_upload_download_roundtrip_with_checksum(self, client, session, tmp_path, monkeypatch):
        from domain.kernel.settings import get_settings

        monkeypatch.setattr(get_settings(), "attachments_dir", tmp_path)
        _, cartella, author, colleague, outsider = await _setup(session)
        r = await client.post(f"/api/cartelle/{cartella.id}/attachments", headers=bearer(author),
                              files={"file": ("decreto-ads.pdf", PDF, "application/pdf")}, data={"kind": "ads_decree"})
        assert r.status_code == 201, r.text
        att = r.json()
        assert att["sha256"] == hashlib.sha256(PDF).hexdigest() and att["size_bytes"] == len(PDF)
        stored = list(tmp_path.rglob(att["sha256"]))
        assert len(stored) == 1 and stored[0].read_bytes() == PDF  # the bytes live outside the row
        row = await session.get(Attachment, att["id"])
        assert row.storage_key == att["sha256"]

        r = await client.get(f"/api/attachments/{att['id']}/content", headers=bearer(colleague))
        assert r.status_code == 200 and r.content == PDF and r.headers["content-type"] == "application/pdf"
        r = await client.get(f"/api/attachments/{att['id']}/content", headers=bearer(outsider))
        assert r.status_code == 404
        listed = (await client.get(f"/api/cartelle/{cartella.id}/attachments", headers=bearer(colleague))).json()
        assert [a["id"] for a in listed] == [att["id"]]

    async def test_forbidden_type_too_large_or_lying_content_is_refused(self, client, session, tmp_path, monkeypatch):
        from domain.kernel.settings import get_settings

        monkeypatch.setattr(get_settings(), "attachments_dir", tmp_path)
        monkeypatch.setattr(get_settings(), "attachment_max_bytes", 1024)
        _, cartella, author, _, _ = await _setup(session)
        cases = [
            (("virus.exe", b"MZ\x90\x00", "application/x-msdownload"), "file"),
            (("grande.pdf", b"%PDF-" + b"0" * 2000, "application/pdf"), "file"),
            (("finto.pdf", b"<html>ciao</html>", "application/pdf"), "file"),
        ]
        for upload, field in cases:
            r = await client.post(f"/api/cartelle/{cartella.id}/attachments", headers=bearer(author),
                                  files={"file": upload}, data={"kind": "other"})
            assert r.status_code == 422, r.text
            assert r.json()["errors"][0]["field"] == field
        r = await client.post(f"/api/cartelle/{cartella.id}/attachments", headers=bearer(author),
                              files={"file": ("a.pdf", PDF, "application/pdf")}, data={"kind": "selfie"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "kind"
        count = (await session.execute(sa.select(sa.func.count()).select_from(Attachment)
                                       .where(Attachment.cartella_id == cartella.id))).scalar()
        assert count == 0
        assert not any(tmp_path.rglob("*")) or all(p.is_dir() for p in tmp_path.rglob("*"))

    async def test_names_outside_latin1_download_with_an_rfc6266_header(self, client, session, tmp_path,
                                                                        monkeypatch):
        """"Relazione dell’AS", a euro sign and an emoji: the download answers 200 with an ASCII `filename` fallback
        and the exact name, percent-encoded UTF-8, in `filename*`."""
        from urllib.parse import unquote

        from domain.kernel.settings import get_settings

        monkeypatch.setattr(get_settings(), "attachments_dir", tmp_path)
        _, cartella, author, colleague, _ = await _setup(session)
        for name in ("Relazione dell’AS.pdf", "Preventivo 120 € - Müller.pdf", "Foto 😀 casa 100%.pdf"):
            r = await client.post(f"/api/cartelle/{cartella.id}/attachments", headers=bearer(author),
                                  files={"file": (name, PDF, "application/pdf")}, data={"kind": "other"})
            assert r.status_code == 201, r.text
            att = r.json()
            stored = att["filename"]
            assert stored == name, stored
            r = await client.get(f"/api/attachments/{att['id']}/content", headers=bearer(colleague))
            assert r.status_code == 200 and r.content == PDF
            header = r.headers["content-disposition"]
            header.encode("ascii")  # a header value is plain ASCII
            parts = [p.strip() for p in header.split(";")]
            assert parts[0] == "attachment"
            fallback = next(p for p in parts if p.startswith("filename=")).removeprefix("filename=")
            assert fallback.startswith('"') and fallback.endswith('"') and fallback.endswith('.pdf"')
            assert '"' not in fallback[1:-1] and "\\" not in fallback[1:-1]
            encoded = next(p for p in parts if p.startswith("filename*=")).removeprefix("filename*=")
            assert encoded.startswith("UTF-8''")
            assert unquote(encoded.removeprefix("UTF-8''"), encoding="utf-8", errors="strict") == stored


class TestAttachmentOwner:
    """owner_type / owner_id name a record of the same cartella, or nothing: 422 naming the field otherwise."""

    @pytest.fixture(autouse=True)
    def _store(self, tmp_path, monkeypatch):
        from domain.kernel.settings import get_settings

        monkeypatch.setattr(get_settings(), "attachments_dir", tmp_path)

    async def _upload(self, client, cartella_id, who, **owner):
        return await client.post(f"/api/cartelle/{cartella_id}/attachments", headers=bearer(who),
                                 files={"file": ("decreto.pdf", PDF, "application/pdf")},
                                 data={"kind": "other", **{k: str(v) for k, v in owner.items()}})

    async def _plan(self, client, cartella_id, who) -> str:
        r = await client.post("/api/care-plans", headers=bearer(who), json={
            "cartella_id": str(cartella_id), "case_manager_id": str(who.id), "title": "Sostegno alla domiciliarità"})
        assert r.status_code == 201, r.text
        return r.json()["id"]

    async def test_owner_of_the_same_cartella_is_accepted(self, client, session, clock):
        _, cartella, author, _, _ = await _setup(session)
        entry = (await client.post(f"/api/cartelle/{cartella.id}/diary", json=_entry(clock),
                                   headers=bearer(author))).json()
        plan_id = await self._plan(client, cartella.id, author)
        for owner_type, owner_id in (("diary_entry", entry["id"]), ("care_plan", plan_id)):
            r = await self._upload(client, cartella.id, author, owner_type=owner_type, owner_id=owner_id)
            assert r.status_code == 201, r.text
            assert (r.json()["owner_type"], r.json()["owner_id"]) == (owner_type, owner_id)

    async def test_owner_that_points_nowhere_or_elsewhere_is_refused(self, client, session, clock):
        _, cartella, author, _, outsider = await _setup(session)
        other_person = await create_person(session, comune="comune-crema")
        other_cartella = await create_cartella(session, person=other_person)
        foreign_plan = await self._plan(client, other_cartella.id, outsider)
        foreign_entry = (await client.post(f"/api/cartelle/{other_cartella.id}/diary", json=_entry(clock),
                                           headers=bearer(outsider))).json()
        cases = [
            ({"owner_type": "diary_entry", "owner_id": uuid.uuid4()}, "owner_id"),
            ({"owner_type": "care_plan", "owner_id": uuid.uuid4()}, "owner_id"),
            ({"owner_type": "care_plan", "owner_id": foreign_plan}, "owner_id"),  # another comune's plan
            ({"owner_type": "diary_entry", "owner_id": foreign_entry["id"]}, "owner_id"),
            ({"owner_type": "ricetta", "owner_id": uuid.uuid4()}, "owner_type"),
            ({"owner_id": uuid.uuid4()}, "owner_type"),
            ({"owner_type": "care_plan"}, "owner_id"),
        ]
        for owner, field in cases:
            r = await self._upload(client, cartella.id, author, **owner)
            assert r.status_code == 422, (owner, r.text)
            assert r.headers["content-type"].startswith("application/problem+json")
            assert [e["field"] for e in r.json()["errors"]] == [field], (owner, r.json())
        count = (await session.execute(sa.select(sa.func.count()).select_from(Attachment)
                                       .where(Attachment.cartella_id == cartella.id))).scalar()
        assert count == 0


async def test_an_out_of_scope_record_answers_like_a_missing_one(client, session, clock):
    """Issue 9: a record outside the caller's scope answered "Cartella non trovata" where a missing one answered
    "Allegato/Voce di diario non trovata": the message told the two apart."""
    _, cartella, author, _, outsider = await _setup(session)
    entry = (await client.post(f"/api/cartelle/{cartella.id}/diary", json=_entry(clock),
                               headers=bearer(author))).json()
    await session.commit()
    hidden = await client.patch(f"/api/diary/{entry['id']}", json={"text": "x"}, headers=bearer(outsider))
    missing = await client.patch(f"/api/diary/{uuid.uuid4()}", json={"text": "x"}, headers=bearer(outsider))
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["detail"] == missing.json()["detail"] == "Voce di diario non trovata."
