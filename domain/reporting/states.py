"""The life of a report export: queued, running step by step, ready (until it expires), or failed or cancelled."""
from __future__ import annotations

from domain.kernel.states import StateMachine
from domain.reporting.models import ExportState as S

STATE_LABELS = {"pending": "In coda", "running": "In corso", "done": "Pronta", "failed": "Non riuscita",
                "cancelled": "Annullata", "expired": "Scaduta"}
ACTION_LABELS = {"start": "avviare l'esportazione", "finish": "concludere l'esportazione",
                 "fail": "registrare l'errore", "cancel": "annullare l'esportazione",
                 "expire": "far scadere il file", "download": "scaricare il file"}

MACHINE = StateMachine("l'esportazione", STATE_LABELS, ACTION_LABELS, {
    (S.pending, "start"): S.running,
    (S.running, "finish"): S.done,
    (S.pending, "fail"): S.failed,
    (S.running, "fail"): S.failed,
    # Cancelling a ready export discards its file before it expires.
    (S.pending, "cancel"): S.cancelled,
    (S.running, "cancel"): S.cancelled,
    (S.done, "cancel"): S.cancelled,
    (S.done, "expire"): S.expired,
}, internal=frozenset({"start", "finish", "fail", "expire"}), state_type=S,
    hints={(S.pending, "download"): "il file non è ancora pronto, seguire l'avanzamento",
           (S.running, "download"): "il file non è ancora pronto, seguire l'avanzamento",
           (S.failed, "download"): "l'esportazione non è riuscita, chiederne una nuova"})
