"""Whether the index answers a query: one answer signal (`signal`: features, model, cuts) and
its calibration at build time (`calibration`)."""
from kb.answer.calibration import CalibrationError, calibration_for_build, load_labelled
from kb.answer.signal import VERDICTS, Answer, AnswerThresholds, answer, thresholds, warm_queries

__all__ = ["VERDICTS", "Answer", "AnswerThresholds", "CalibrationError", "answer", "calibration_for_build",
           "load_labelled", "thresholds", "warm_queries"]
