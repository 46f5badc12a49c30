"""Imports every context's tables so SQLModel.metadata is complete (Alembic, tests)."""
from domain.assessment import models as assessment_models  # noqa: F401
from domain.care_plan import models as care_plan_models  # noqa: F401
from domain.diary import models as diary_models  # noqa: F401
from domain.discharge import models as discharge_models  # noqa: F401
from domain.imports import models as imports_models  # noqa: F401
from domain.kernel import models as kernel_models  # noqa: F401
from domain.measures import models as measures_models  # noqa: F401
from domain.outbox import models as outbox_models  # noqa: F401
from domain.pua import models as pua_models  # noqa: F401
from domain.registry import models as registry_models  # noqa: F401
from domain.reporting import models as reporting_models  # noqa: F401
from domain.security import models as security_models  # noqa: F401
from domain.services import models as services_models  # noqa: F401
from domain.territory import models as territory_models  # noqa: F401
from domain.waiting_list import models as waiting_list_models  # noqa: F401
