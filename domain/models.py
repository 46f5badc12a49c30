"""Imports every context's tables so SQLModel.metadata is complete (Alembic, tests)."""
from domain.kernel import models as kernel_models  # noqa: F401
from domain.registry import models as registry_models  # noqa: F401
from domain.security import models as security_models  # noqa: F401
