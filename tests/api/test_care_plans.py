"""Care plans through the API: draft → goals → SAD 6 h/week + ADI/C-DOM → propose → agree with consent → active →
review → active; consent rules, illegal transitions, versions, provider view, print."""
from datetime import date

import pytest

from domain.care_plan import reviews as plan_reviews
from domain.care_plan.models import CarePlan
from domain.security.models import Role
from tests.factories.registry import insert_person
from tests.support import bearer, make_user, org

PROBLEM = "application/problem+json"


@pytest.fixture
async def ctx(session, client):
    sw = await make_user(session, Role.comune_social_worker, "comune-offanengo", profession="Assistente sociale")
    sw.display_name = "Anna Ferrari"
    session.add(sw)
    person = await insert_person(session, comune="comune-offanengo", surname="Bianchi", given_name="Maria", sex="F",
                                 birth_date=date(1943, 5, 10), lives_alone=True, birth_place="Crema")
    h = bearer(sw)
    r = await client.post(f"/api/persons/{person.id}/cartelle", json={"area": "anziani"}, headers=h)
    assert r.status_code == 201, r.text
    r2 = await client.post(f"/api/persons/{person.id}/consents", headers=h, json={
        "purpose": "care", "grantor_kind": "self", "valid_from": "2026-03-01"})
    assert r2.status_code == 201, r2.text
    return {"sw": sw, "h": h, "person": person, "cartella_id": r.json()["id"], "consent_id": r2.json()["id"]}


async def draft(client, ctx, **kw) -> dict:
    body = {"cartella_id": ctx["cartella_id"], "case_manager_id": str(ctx["sw"].id),
            "title": "Sostegno alla domiciliarità", "summary": "Vive sola, Barthel 35, IADL 2.", **kw}
    r = await client.post("/api/care-plans", json=body, headers=ctx["h"])
    assert r.status_code == 201, r.text
    return r.json()


async def with_goal_and_interventions(client, session, ctx, plan_id) -> dict:
    h = ctx["h"]
    r = await client.post(f"/api/care-plans/{plan_id}/goals", headers=h, json={
        "description": "Permanenza al domicilio in sicurezza", "indicator": "Accessi in Pronto Soccorso",
        "target": "Nessun accesso in 6 mesi", "due_date": "2026-09-01"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/care-plans/{plan_id}/interventions", headers=h, json={
        "service_type": "sad", "provider_org_id": str((await org(session, "ets-igea")).id), "intensity_value": 6,
        "intensity_unit": "ore/settimana", "start_date": "2026-03-02", "end_date": "2026-08-31",
        "funding_source": "fna"})
    assert r.status_code == 201, r.text
    r = await client.post(f"/api/care-plans/{plan_id}/interventions", headers=h, json={
        "service_type": "adi_cdom", "provider_org_id": str((await org(session, "asst-crema")).id),
        "intensity_value": 2, "intensity_unit": "accessi/settimana", "start_date": "2026-03-02",
        "funding_source": "fondo_sanitario"})
    assert r.status_code == 201, r.text
    return r.json()


async def test_full_flow_versions_and_print(client, session, ctx):
    h = ctx["h"]
    plan = await draft(client, ctx)
    pid = plan["id"]
    assert plan["state"] == "draft" and plan["state_label"] == "Bozza" and plan["version"] == 1
    body = await with_goal_and_interventions(client, session, ctx, pid)
    assert body["version"] == 4
    sad, adi = body["interventions"]
    assert sad["service_label"] == "Servizio di Assistenza Domiciliare (SAD)"
    assert sad["intensity_label"] == "6 ore/settimana" and sad["provider_name"] == "Cooperativa Sociale Igea"
    assert adi["intensity_label"] == "2 accessi/settimana"

    r = await client.post(f"/api/care-plans/{pid}/propose", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "proposed"
    r = await client.post(f"/api/care-plans/{pid}/agree", headers=h, json={"consent_id": ctx["consent_id"]})
    assert r.status_code == 200, r.text
    agreed = r.json()
    assert agreed["state"] == "agreed" and agreed["agreed_at"] and agreed["consent_id"] == ctx["consent_id"]
    assert agreed["agreed_version"] == agreed["version"] == 6
    assert [s["name"] for s in agreed["signatories"]] == ["Maria Bianchi", "Anna Ferrari"]

    r = await client.post(f"/api/care-plans/{pid}/activate", headers=h)
    assert r.status_code == 200, r.text
    active = r.json()
    assert active["state"] == "active" and active["activated_at"] and active["next_review_due"] == "2026-08-29"
    assert [i["status"] for i in active["interventions"]] == ["active", "active"]

    r = await client.post(f"/api/care-plans/{pid}/reviews/start", headers=h)
    assert r.status_code == 200 and r.json()["state"] == "under_review"
    r = await client.patch(f"/api/care-plans/{pid}/interventions/{sad['id']}", headers=h,
                           json={"intensity_value": 8})
    assert r.status_code == 200 and r.json()["interventions"][0]["intensity_label"] == "8 ore/settimana"
    r = await client.post(f"/api/care-plans/{pid}/reviews", headers=h,
                          json={"outcome": "modify", "notes": "SAD aumentato a 8 ore"})
    assert r.status_code == 200, r.text
    reviewed = r.json()
    assert reviewed["state"] == "active" and reviewed["reviews"][0]["outcome_label"] == "Prosecuzione con modifiche"

    # Every version is kept and retrievable.
    r = await client.get(f"/api/care-plans/{pid}/versions", headers=h)
    assert r.status_code == 200
    versions = r.json()
    assert [v["version"] for v in versions] == list(range(1, reviewed["version"] + 1))
    assert [v["action"] for v in versions][:6] == ["created", "goal_added", "intervention_added",
                                                   "intervention_added", "proposed", "agreed"]
    r = await client.get(f"/api/care-plans/{pid}/versions/6", headers=h)
    assert r.status_code == 200
    v6 = r.json()["data"]
    assert v6["plan"]["state"] == "agreed" and v6["plan"]["consent_id"] == ctx["consent_id"]
    assert [i["intensity_value"] for i in v6["interventions"]] == [6.0, 2.0] and len(v6["goals"]) == 1
    assert (await client.get(f"/api/care-plans/{pid}/versions/99", headers=h)).status_code == 404

    # Lists.
    r = await client.get(f"/api/cartelle/{ctx['cartella_id']}/care-plans", headers=h)
    assert r.status_code == 200 and [p["id"] for p in r.json()["items"]] == [pid]
    r = await client.get(f"/api/cartelle/{ctx['cartella_id']}/care-plans?state=draft", headers=h)
    assert r.json()["items"] == []

    # The printable plan.
    r = await client.get(f"/api/care-plans/{pid}/print", headers=h)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert "@page { size: A4;" in html
    assert "Maria Bianchi" in html and "10/05/1943" in html and "Offanengo" in html
    assert "Servizio di Assistenza Domiciliare (SAD)" in html and "8 ore/settimana" in html
    assert "Assistenza Domiciliare Integrata / Cure domiciliari (ADI - C-DOM)" in html and "2 accessi/settimana" in html
    assert "Cooperativa Sociale Igea" in html and "Fondo Nazionale per le Non Autosufficienze (FNA)" in html
    assert "Anna Ferrari" in html and "Persona interessata" in html and "Case manager" in html
    assert html.count('class="sign-line"') == 4  # 2 signatories × (firma, data)
    assert f"Versione n. {reviewed['version']}" in html
    assert "http://" not in html and "https://" not in html and "<link" not in html and "<script" not in html
    # Its own <style> block is allowed, nothing else (a page under /api with default-src 'none' printed unstyled).
    csp = dict(d.strip().split(" ", 1) for d in r.headers["content-security-policy"].split(";"))
    assert csp["style-src"] == "'unsafe-inline'" and csp["default-src"] == "'none'" and "script-src" not in csp
    r = await client.get(f"/api/care-plans/{pid}/print?version=6", headers=h)
    assert r.status_code == 200 and "6 ore/settimana" in r.text and "Versione n. 6" in r.text


async def test_activation_without_consent_is_refused_naming_consent_id(client, session, ctx):
    h = ctx["h"]
    pid = (await draft(client, ctx))["id"]
    await with_goal_and_interventions(client, session, ctx, pid)
    assert (await client.post(f"/api/care-plans/{pid}/propose", headers=h)).status_code == 200
    before = (await client.get(f"/api/care-plans/{pid}", headers=h)).json()
    r = await client.post(f"/api/care-plans/{pid}/activate", headers=h)
    assert r.status_code == 409 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "consent_id" and "consent_id" in r.json()["detail"]
    after = (await client.get(f"/api/care-plans/{pid}", headers=h)).json()
    assert after["state"] == "proposed" and after["version"] == before["version"]
    assert [i["status"] for i in after["interventions"]] == ["planned", "planned"]
    r = await client.get(f"/api/cartelle/{ctx['cartella_id']}/assignments?active=true", headers=h)
    assert "provider" not in [a["reason"] for a in r.json()["items"]]


async def test_revoked_consent_cannot_be_used(client, session, ctx):
    h = ctx["h"]
    pid = (await draft(client, ctx))["id"]
    await with_goal_and_interventions(client, session, ctx, pid)
    await client.post(f"/api/care-plans/{pid}/propose", headers=h)
    r = await client.post(f"/api/persons/{ctx['person'].id}/consents/{ctx['consent_id']}/revoke", headers=h,
                          json={"reason": "La persona ritira il consenso"})
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/care-plans/{pid}/agree", headers=h, json={"consent_id": ctx["consent_id"]})
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    assert r.json()["errors"][0]["field"] == "consent_id"
    r = await client.get(f"/api/care-plans/{pid}", headers=h)
    assert r.json()["state"] == "proposed" and r.json()["consent_id"] is None


async def test_agree_without_a_body_takes_the_one_care_consent_in_force(client, session, ctx):
    h = ctx["h"]
    pid = (await draft(client, ctx))["id"]
    await with_goal_and_interventions(client, session, ctx, pid)
    await client.post(f"/api/care-plans/{pid}/propose", headers=h)
    second = await client.post(f"/api/persons/{ctx['person'].id}/consents", headers=h, json={
        "purpose": "care", "grantor_kind": "self", "valid_from": "2026-03-02"})
    await session.commit()
    # two consents to care in force: which one the plan runs on is the operator's to say
    r = await client.post(f"/api/care-plans/{pid}/agree", headers=h)
    assert r.status_code == 422 and r.headers["content-type"].startswith(PROBLEM)
    [err] = r.json()["errors"]
    assert err["field"] == "consent_id" and "2 consensi" in err["reason"] and second.json()["id"] in err["reason"]
    r = await client.post(f"/api/persons/{ctx['person'].id}/consents/{second.json()['id']}/revoke", headers=h,
                          json={"reason": "Sostituito dal precedente"})
    assert r.status_code == 200, r.text
    r = await client.post(f"/api/care-plans/{pid}/agree", headers=h)  # no body at all
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "agreed" and r.json()["consent_id"] == ctx["consent_id"]


async def test_illegal_transitions_and_bad_input(client, session, ctx):
    h = ctx["h"]
    pid = (await draft(client, ctx))["id"]
    for action, body in (("agree", {"consent_id": ctx["consent_id"]}), ("resume", None),
                         ("complete", {"reason": "fine"}), ("suspend", {"reason": "pausa"}),
                         ("reviews/start", None), ("reviews", {"outcome": "continue"})):
        r = await client.post(f"/api/care-plans/{pid}/{action}", headers=h, json=body)
        assert r.status_code == 409, (action, r.text)
        assert r.headers["content-type"].startswith(PROBLEM) and r.json()["state"] == "draft"
    r = await client.post(f"/api/care-plans/{pid}/revoke", headers=h, json={"reason": "Piano sostituito"})
    assert r.status_code == 200 and r.json()["state"] == "revoked" and r.json()["allowed_actions"] == []
    r = await client.post(f"/api/care-plans/{pid}/goals", headers=h,
                          json={"description": "a", "indicator": "b", "target": "c"})
    assert r.status_code == 409
    r = await client.post(f"/api/care-plans/{pid}/revoke", headers=h, json={"reason": "di nuovo"})
    assert r.status_code == 409

    pid2 = (await draft(client, ctx))["id"]
    r = await client.post(f"/api/care-plans/{pid2}/interventions", headers=h,
                          json={"service_type": "sad", "colour": "blu"})
    assert r.status_code == 422 and [e["field"] for e in r.json()["errors"]] == ["colour"]
    r = await client.post(f"/api/care-plans/{pid2}/interventions", headers=h, json={
        "service_type": "sad", "start_date": "2026-04-01", "end_date": "2026-03-01"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "end_date"
    r = await client.post(f"/api/care-plans/{pid2}/interventions", headers=h, json={"service_type": "nuoto"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "service_type"
    r = await client.post("/api/care-plans", headers=h, json={
        "cartella_id": ctx["cartella_id"], "case_manager_id": str(ctx["sw"].id), "title": "x",
        "review_interval_days": 1})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "review_interval_days"


async def test_provider_minimal_view_and_permissions(client, session, ctx):
    h = ctx["h"]
    pid = (await draft(client, ctx))["id"]
    await with_goal_and_interventions(client, session, ctx, pid)
    await client.post(f"/api/care-plans/{pid}/propose", headers=h)
    await client.post(f"/api/care-plans/{pid}/agree", headers=h, json={"consent_id": ctx["consent_id"]})
    assert (await client.post(f"/api/care-plans/{pid}/activate", headers=h)).status_code == 200

    ets = bearer(await make_user(session, Role.ets_operator, "ets-igea"))
    r = await client.get(f"/api/care-plans/{pid}", headers=ets)
    assert r.status_code == 200, r.text
    view = r.json()
    assert view["view"] == "minimal" and "goals" not in view and "summary" not in view
    assert [(i["service_type"], i["intensity_label"]) for i in view["interventions"]] == [("sad", "6 ore/settimana")]
    r = await client.get(f"/api/cartelle/{ctx['cartella_id']}/care-plans", headers=ets)
    assert r.status_code == 200 and r.json()["items"][0]["title"] is None
    assert (await client.get(f"/api/care-plans/{pid}/print", headers=ets)).status_code == 403
    assert (await client.post(f"/api/care-plans/{pid}/reviews/start", headers=ets)).status_code == 403

    other_comune = bearer(await make_user(session, Role.comune_social_worker, "comune-crema"))
    assert (await client.get(f"/api/care-plans/{pid}", headers=other_comune)).status_code == 404


async def test_due_reviews_queue(client, session, ctx):
    h = ctx["h"]
    pid = (await draft(client, ctx))["id"]
    await with_goal_and_interventions(client, session, ctx, pid)
    await client.post(f"/api/care-plans/{pid}/propose", headers=h)
    await client.post(f"/api/care-plans/{pid}/agree", headers=h, json={"consent_id": ctx["consent_id"]})
    await client.post(f"/api/care-plans/{pid}/activate", headers=h)
    plan = await session.get(CarePlan, pid)
    plan.next_review_due = date(2026, 2, 20)
    await session.flush()
    await plan_reviews.create_review_reminders(session)
    r = await client.get("/api/care-plans/due-reviews", headers=h)
    assert r.status_code == 200, r.text
    [item] = r.json()["items"]
    assert item["source_id"] == pid and item["overdue"] is True and "scaduta" in item["title"]


async def _vmd_with_barthel(session, ctx) -> tuple[str, str, str]:
    """A concluded VMD on the cartella with a Barthel response; returns (vmd id, band label, score text)."""
    from domain.assessment import instruments
    from domain.assessment.models import InstrumentResponse
    from domain.registry.models import Cartella, Consent
    from tests.domain.care_plan.support import World, concluded_vmd, principal_of

    w = World(sw=ctx["sw"], sw_p=await principal_of(session, ctx["sw"]),
              ifec=await make_user(session, Role.asst_pua_operator, "asst-crema-pua", profession="IFeC"),
              person=ctx["person"], cartella=await session.get(Cartella, ctx["cartella_id"]),
              consent=await session.get(Consent, ctx["consent_id"]))
    vmd = await concluded_vmd(session, w)
    definition = instruments.get("barthel", 1)
    answers = {it.id: it.options[1].code for it in definition.items}  # the second option of every item
    result = instruments.score(definition, answers)
    total = result.scores["total"]
    session.add(InstrumentResponse(
        person_id=ctx["person"].id, context_type="vmd", context_id=vmd.id, instrument_code="barthel",
        instrument_version=1, answers=answers, scores=result.model_dump(mode="json"), author_id=ctx["sw"].id,
        author_org_id=(await org(session, "comune-offanengo")).id))
    await session.flush()
    return str(vmd.id), total.band.label, f"{total.value}/{total.max}"


async def test_print_pdf_a4_with_identity_vmd_scores_case_manager_and_version(client, session, ctx):
    """Issue 15: `?format=pdf` (or `Accept: application/pdf`) answers a real A4 PDF with what the paper needs;
    unknown formats are 406 problem+json; the HTML print stays the default."""
    import io

    from pypdf import PdfReader

    person, h = ctx["person"], ctx["h"]
    person.codice_fiscale = "BNCMRA43E50D142X"
    person.residence_address = "Via Giuseppe Verdi 12"
    await session.flush()
    vmd_id, band, score = await _vmd_with_barthel(session, ctx)
    pid = (await draft(client, ctx, vmd_id=vmd_id))["id"]
    await with_goal_and_interventions(client, session, ctx, pid)
    assert (await client.post(f"/api/care-plans/{pid}/propose", headers=h)).status_code == 200
    agreed = (await client.post(f"/api/care-plans/{pid}/agree", headers=h,
                                json={"consent_id": ctx["consent_id"]})).json()
    active = (await client.post(f"/api/care-plans/{pid}/activate", headers=h)).json()
    assert active["state"] == "active" and active["version"] == agreed["version"] + 1

    for kw in ({"params": {"format": "pdf"}}, {"headers": {"Accept": "application/pdf"}}):
        r = await client.get(f"/api/care-plans/{pid}/print", headers={**h, **kw.get("headers", {})},
                             params=kw.get("params"))
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf" and r.content.startswith(b"%PDF-")
        assert r.headers["cache-control"] == "no-store"
        reader = PdfReader(io.BytesIO(r.content))
        page = reader.pages[0]
        assert abs(float(page.mediabox.width) - 595) <= 1 and abs(float(page.mediabox.height) - 842) <= 1
        first = page.extract_text()
        assert first.strip()
        text = " ".join(" ".join(p.extract_text().split()) for p in reader.pages)
        assert "Cognome e nome Bianchi Maria" in text, text
        assert "BNCMRA43E50D142X" in text and "Via Giuseppe Verdi 12" in text and "Offanengo" in text
        assert f"Cartella n. {ctx['cartella_id']}" in text
        assert "Indice di Barthel" in text and score in text and band in text
        assert "Anna Ferrari" in text and (await org(session, "comune-offanengo")).name in text
        assert f"Sottoscritto il 02/03/2026 (versione n. {agreed['version']})" in text
        assert f"Versione n. {active['version']} del 02/03/2026" in text
        assert "Servizio di Assistenza Domiciliare (SAD)" in text and "6 ore/settimana" in text

    for kw in ({"params": {"format": "docx"}}, {"headers": {"Accept": "application/msword"}}):
        r = await client.get(f"/api/care-plans/{pid}/print", headers={**h, **kw.get("headers", {})},
                             params=kw.get("params"))
        assert r.status_code == 406, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
    r = await client.get(f"/api/care-plans/{pid}/print", headers={**h, "Accept": "text/html,*/*;q=0.8"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "Bianchi Maria" in r.text and "BNCMRA43E50D142X" in r.text
