"""ASST Crema: the outbound side of the FHIR exchange (the outbox's subscribers and its HTTP relay)."""
