"""codemill: source repositories in, a served code model out (DeepSeek-Coder recipe on Kubeflow Pipelines)."""

__version__ = "0.1.0"
