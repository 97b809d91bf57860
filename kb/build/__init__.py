"""Writing index versions: plan (what to hold, what to encode), stage (write aside), publish."""
from kb.build.pipeline import build_index
from kb.build.plan import settings_fingerprint
from kb.build.publish import CHECKPOINTS
from kb.build.report import BuildError, BuildReport

__all__ = ["CHECKPOINTS", "BuildError", "BuildReport", "build_index", "settings_fingerprint"]
