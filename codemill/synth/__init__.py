"""The synth stage: teacher-written instruction data (oss-instruct) and distillation
(rejection sampling, mutual verification), every answer verified in the sandbox before it
is kept (docs/synth.md).

One step, ``synth`` (``codemill/steps.py``): :func:`codemill.synth.steps.synth_step`.
The teacher client is :mod:`codemill.synth.teacher`; answers are read (never run) by
:mod:`codemill.synth.answers`; :mod:`codemill.synth.oss`, :mod:`codemill.synth.distill`
and :mod:`codemill.synth.mutual` decide what is kept; :mod:`codemill.synth.output`
writes the contract.
"""

from codemill.synth.config import SynthConfig

__all__ = ["SynthConfig"]
