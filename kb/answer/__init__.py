"""Whether the index answers a query: one answer signal (`signal`) and its calibration (`calibration`)."""
from kb.answer.calibration import CalibrationError, calibration_for_build
from kb.answer.signal import VERDICTS, Answer, AnswerThresholds, answer, thresholds, warm_queries

__all__ = ["VERDICTS", "Answer", "AnswerThresholds", "CalibrationError", "answer", "calibration_for_build",
           "thresholds", "warm_queries"]
