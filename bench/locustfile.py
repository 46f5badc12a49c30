"""The load mix of one Ambito's working day, for locust (started by `python -m bench.load`, which prepares the data).

    LOAD_CONTEXT=context.json locust -f bench/locustfile.py --headless -u 25 -r 5 -t 120s -H http://127.0.0.1:8000

Four kinds of simulated user, each with the demo user's token of its role (weights: how many of each there are):

- PUA social worker (weight 3), as.ambito.pua: person search 6, PUA registration 2, PUA triage queue 2;
- comune social worker (4), as.crema: plan read 4, VMD answers saved 3, work queue 3, "my assessments" 1, person
  search 2, RSA ranking 1, RSA unit list 1;
- COT operator (1), cot.crema: COT queue 3, discharge case read 2;
- ASST gateway (2), asst-gateway (a system client): FHIR Patient read 6, discharge signal as a FHIR transaction 1.

Per 100 requests that is about: person search 23, FHIR Patient read 17, plan read 11, work queues 11 ("my queue"
8, "my assessments" 3), COT queue and case 10, VMD answers 8, PUA queue 6, PUA registration 6, waiting-list reads 5,
discharge transaction 3 (the classes run in proportion to their weight, each picks its tasks by weight).

Think time between two tasks of a user: 1-5 s (uniform, 3 s on average). A real operator sends about 300 API
requests in a working day (bench/audit_volume.py), one every 1.5 minutes: one simulated user is the pace of about
thirty operators, and 25 users are already more than the Ambito's peak.

Answers: 2xx are successes. EXPECTED lists the 4xx an operation may get in normal work (counted apart, written to
LOAD_COUNTS_OUT when locust stops, with the count of every request sent); any other status is a failure with its
first 300 characters.
"""
from __future__ import annotations

import json
import os
import random
import uuid
from collections import Counter
from datetime import date

from locust import HttpUser, between, events, task

from bench.fhir_transactions import bundle, new_person

CONTEXT = json.loads(open(os.environ["LOAD_CONTEXT"]).read()) if os.environ.get("LOAD_CONTEXT") else None
# operation → 4xx that belong to normal work. None so far: every request of the mix is one an operator may make
# (no 403 by design) on data that exists; a 409 of a concurrent edit would be expected, but no two users here
# edit the same record.
EXPECTED: dict[str, frozenset[int]] = {}
expected_seen: Counter[tuple[str, int]] = Counter()
# Think time, min,max seconds (bench.load --think; the smoke test shortens it).
THINK = tuple(float(x) for x in os.environ.get("LOAD_THINK", "1,5").split(","))
SOCIAL_NETWORK = ("present_active", "limited", "absent")
ECONOMIC = ("none", "occasional", "severe")


sent = Counter()  # every request, the ramp's too (locust's statistics restart after it; the audit trail does not)


@events.request.add_listener
def _count(name, **_kw) -> None:
    sent[name] += 1


@events.quitting.add_listener
def _write_counts(environment, **_kw) -> None:
    out = os.environ.get("LOAD_COUNTS_OUT")
    if out:
        with open(out, "w") as f:
            json.dump({"sent": dict(sent), "expected": [{"operation": op, "status": st, "count": n}
                                                         for (op, st), n in expected_seen.items()]}, f)


class _Role(HttpUser):
    abstract = True
    wait_time = between(*THINK)
    role = ""

    def on_start(self) -> None:
        self.rng = random.Random()
        self.client.headers["Authorization"] = f"Bearer {CONTEXT['tokens'][self.role]}"

    def call(self, op: str, method: str, url: str, **kw) -> dict | None:
        with self.client.request(method, url, name=op, catch_response=True, **kw) as r:
            if 200 <= r.status_code < 300:
                r.success()
                ctype = r.headers.get("content-type", "")
                return r.json() if "json" in ctype else None
            if r.status_code in EXPECTED.get(op, ()):
                expected_seen[(op, r.status_code)] += 1
                r.success()
            else:
                # status 0: no answer at all (the connection failed or was closed): the error says why
                r.failure(f"{r.status_code}: {(r.text or '')[:300]}" if r.status_code else f"0: {r.error!r}")
        return None

    def person(self) -> dict:
        return self.rng.choice(CONTEXT["persons"])

    def search(self) -> None:
        p = self.person()
        q = p["surname"] if self.rng.random() < 0.3 else f"{p['surname']} {p['given_name']}"
        self.call("person_search", "GET", "/api/persons", params={"q": q.lower(), "limit": 20})


class PuaSocialWorker(_Role):
    weight = 3
    role = "pua"

    @task(6)
    def person_search(self) -> None:
        self.search()

    @task(2)
    def pua_register(self) -> None:
        self.call("pua_register", "POST", "/api/pua/requests", json={
            "person_id": self.person()["id"], "channel": self.rng.choice(["phone", "desk"]), "requester_kind": "self",
            "reported_need": "Chiede informazioni sull'assistenza domiciliare.", "need_domains": ["personal_care"]})

    @task(2)
    def pua_queue(self) -> None:
        self.call("pua_queue", "GET", "/api/pua/queue")


class ComuneSocialWorker(_Role):
    weight = 4
    role = "social_worker"

    @task(4)
    def plan_read(self) -> None:
        self.call("plan_read", "GET", f"/api/care-plans/{self.rng.choice(CONTEXT['plans'])}")

    @task(3)
    def vmd_answers_save(self) -> None:
        answers = {"living_arrangement": "alone", "social_network": self.rng.choice(SOCIAL_NETWORK),
                   "social_isolation": self.rng.random() < 0.5, "caregiver_present": False,
                   "housing_adequacy": "partially_adequate", "housing_barriers": ["stairs_without_lift"],
                   "eviction_risk": False, "economic_difficulty": self.rng.choice(ECONOMIC)}
        self.call("vmd_answers_save", "POST", f"/api/vmd/{self.rng.choice(CONTEXT['vmds'])}/responses",
                  json={"instrument_code": "social_risk", "answers": answers})

    @task(3)
    def work_queue(self) -> None:
        self.call("work_queue", "GET", "/api/work-items/mine")

    @task(1)
    def my_assessments(self) -> None:
        self.call("work_queue_vmd", "GET", "/api/vmd/mine")

    @task(2)
    def person_search(self) -> None:
        self.search()

    @task(1)
    def waiting_list_ranking(self) -> None:
        self.call("waiting_list_ranking", "GET", "/api/waiting-lists/ranking", params={"udo_type": "rsa"})

    @task(1)
    def waiting_list_unit(self) -> None:
        self.call("waiting_list_unit", "GET", f"/api/waiting-lists/units/{self.rng.choice(CONTEXT['rsa_units'])}")


class CotOperator(_Role):
    weight = 1
    role = "cot"

    @task(3)
    def cot_queue(self) -> None:
        page = self.call("cot_queue", "GET", "/api/discharges/cot-queue", params={"limit": 50})
        self.cases = [c["id"] for c in (page or {}).get("items", [])] or getattr(self, "cases", [])

    @task(2)
    def discharge_read(self) -> None:
        if not getattr(self, "cases", None):
            self.cot_queue()
        if self.cases:
            self.call("discharge_read", "GET", f"/api/discharges/{self.rng.choice(self.cases)}")


class AsstGateway(_Role):
    weight = 2
    role = "gateway"

    @task(6)
    def fhir_patient_read(self) -> None:
        self.call("fhir_patient_read", "GET", f"/fhir/Patient/{self.person()['id']}",
                  headers={"Accept": "application/fhir+json"})

    @task(1)
    def fhir_discharge_transaction(self) -> None:
        # 80 % persons already registered (matched on the codice fiscale), 20 % new (registered by the Bundle).
        if self.rng.random() < 0.8:
            p = dict(self.rng.choice(CONTEXT["discharge_persons"]))
            p["birth_date"] = date.fromisoformat(p["birth_date"])
        else:
            p = new_person(random.Random(uuid.uuid4().int))
        self.call("fhir_discharge_transaction", "POST", "/fhir", data=json.dumps(bundle(p, date.today())),
                  headers={"Content-Type": "application/fhir+json"})
