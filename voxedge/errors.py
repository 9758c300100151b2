"""Every failure voxedge reports on purpose is a VoxedgeError.

Messages name the input, the problem and what to do about it, so that an application can show them
to its user as they are.
"""


class VoxedgeError(Exception):
    """Base class: catch this to handle anything voxedge refuses or cannot do."""


class AudioError(VoxedgeError, ValueError):
    """The audio given cannot be used: unreadable file, empty, NaN/Inf, wrong dtype or shape."""


class BundleError(VoxedgeError):
    """A bundle directory is missing, incomplete, tampered with or of an unknown format."""


class BufferOverflowError(VoxedgeError):
    """A ring buffer configured with overflow="raise" was written faster than it was read."""


class DependencyError(VoxedgeError, ImportError):
    """An optional dependency (e.g. sounddevice for the microphone) is not installed or not usable."""


class UnsupportedError(VoxedgeError):
    """A request that the bundle or this version of voxedge does not support (e.g. an unknown delay)."""


class OptionError(VoxedgeError, ValueError):
    """An option has a value of the wrong type or out of range (e.g. `beam_size=0`)."""
