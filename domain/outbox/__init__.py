"""Messages to ASST (the outbox of the FHIR exchange): what was decided to be sent, on which basis, and how it went."""
