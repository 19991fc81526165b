"""Multi-stage recipes built from the stages (docs/pipelines.md): the steps that only the
recipes need, such as r1's served teacher and its cross-stage comparison."""
