"""localstage: run a synthesized stage end to end offline (moto + local Lambda + APIs).

``python -m localstage serve`` boots stage ``local`` and runs until Ctrl-C;
``python -m localstage demo`` runs every pattern's scenario. See localstage/README.md.
"""

from localstage.stage import LocalStage, running_stage

__all__ = ["LocalStage", "running_stage"]
