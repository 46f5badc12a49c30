"""Reference data loader (territory, organisations, catalogue, UDO). Placeholder until the territory work lands."""


async def load_reference_data(session, ambito_dir=None) -> dict:
    return {}
