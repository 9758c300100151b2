"""onnxruntime sessions for a bundle's graphs: execution providers built in or loaded as plugins, their
options, where each graph's nodes landed, and what happens when an accelerator takes less than asked
(docs/hardware.md).

Two kinds of provider reach onnxruntime differently. Built-in ones (CPU, CUDA in onnxruntime-gpu,
OpenVINO in onnxruntime-openvino, DirectML, CoreML) are named in the session's provider list. Plugin
ones (onnxruntime-qnn 2.x, onnxruntime-ep-openvino, ...) are shared libraries that must be registered
once per process and then attached to a session for the devices they expose; named in the provider
list instead, they are silently ignored and everything runs on the CPU. voxedge registers the plugin
package of a requested provider when it is installed, and checks after every session was created
which provider took which nodes: a requested accelerator that took nothing is a loud warning, and
with `strict` any node left to the CPU is an error.
"""

from __future__ import annotations

import collections
import importlib
import importlib.util
import os
import sys
import threading
import warnings
from dataclasses import dataclass

from .errors import BundleError, DependencyError, UnsupportedError
from .options import RuntimeOptions

CPU = "CPUExecutionProvider"
# Plugin execution providers and the Python package that ships each library (`get_library_path()`).
PLUGIN_PACKAGES = {
    "QNNExecutionProvider": "onnxruntime_qnn",
    "OpenVINOExecutionProvider": "onnxruntime_ep_openvino",
    "NvTensorRTRTXExecutionProvider": "onnxruntime_ep_nv_tensorrt_rtx",
    "WebGpuExecutionProvider": "onnxruntime_ep_webgpu",
}
# Extension modules to load, with every symbol bound, before a plugin's library: libQnnHtp.so (the HTP
# backend, simulator included) puts its own copy of libffi (ffi_prep_cif, ffi_type_*) into the global
# symbol scope, and a cffi backend loaded after it binds to those while calling its own ffi_call: the
# values it returns are garbage (libsndfile's file handle: soundfile then segfaults). Loaded first, it
# keeps its own libffi.
PRELOAD = {"QNNExecutionProvider": ("_cffi_backend",)}
DEVICE_KEY = "device"  # voxedge's own provider option: which of a plugin's devices (cpu, gpu, npu)
INSTALL_HINT = ("install the onnxruntime package built for your accelerator (onnxruntime-gpu, onnxruntime-openvino, "
                "onnxruntime-directml) or its plugin package (onnxruntime-qnn, onnxruntime-ep-openvino); "
                "docs/hardware.md")

_registered: set[str] = set()
_register_lock = threading.Lock()


@dataclass
class Choice:
    """One requested provider as onnxruntime will get it: options, and the plugin devices if any."""

    name: str
    options: dict
    devices: list | None = None


def plan(options: RuntimeOptions) -> list[Choice]:
    """The requested providers other than CPU that exist here, in priority order. One that does not
    exist is a warning (an error with `strict`)."""
    import onnxruntime

    chosen: list[Choice] = []
    for name in options.providers:
        if name == CPU or any(c.name == name for c in chosen):
            continue
        settings = options.options_for(name)
        device = settings.pop(DEVICE_KEY, None)
        devices = _plugin_devices(onnxruntime, name, device)
        if devices:
            chosen.append(Choice(name, settings, devices))
        elif devices is None and name in onnxruntime.get_available_providers():
            chosen.append(Choice(name, settings))
        else:
            where = f" with a {device} device" if device else ""
            _unavailable(options, f"execution provider {name!r} is not available{where} in this onnxruntime "
                         f"(available: {', '.join(_all_available(onnxruntime))})", INSTALL_HINT)
    return chosen


def _plugin_devices(onnxruntime, name: str, device: str | None):
    """The devices of plugin provider `name` (registering its package's library on first use), filtered
    by device type; None when `name` is not a plugin here (built in, or unknown)."""
    if not any(d.ep_name == name for d in onnxruntime.get_ep_devices()):
        package = PLUGIN_PACKAGES.get(name)
        if package is None or importlib.util.find_spec(package) is None:
            return None
        _register(onnxruntime, name, package)
    devices = [d for d in onnxruntime.get_ep_devices() if d.ep_name == name]
    if device is not None:
        kind = device.strip().upper()
        if kind not in ("CPU", "GPU", "NPU"):
            raise UnsupportedError(f"provider option device={device!r}: choose cpu, gpu or npu")
        devices = [d for d in devices if d.device.type.name == kind]
    return devices


def _register(onnxruntime, name: str, package: str) -> None:
    with _register_lock:
        if name in _registered:
            return
        _preload(PRELOAD.get(name, ()))
        try:
            library = importlib.import_module(package).get_library_path()
            onnxruntime.register_execution_provider_library(name, library)
        except Exception as exc:  # a broken install: onnxruntime and the plugin raise their own types
            raise DependencyError(f"the {name} plugin ({package}) could not be loaded: {str(exc)[:300]}") from None
        _registered.add(name)


def _preload(modules) -> None:
    if not hasattr(sys, "setdlopenflags"):  # Windows: no global symbol scope
        return
    for module in modules:
        if module in sys.modules or importlib.util.find_spec(module) is None:
            continue
        flags = sys.getdlopenflags()
        sys.setdlopenflags(os.RTLD_NOW | (flags & ~os.RTLD_LAZY))  # bind everything now, before the plugin
        try:
            importlib.import_module(module)
        finally:
            sys.setdlopenflags(flags)


def _all_available(onnxruntime) -> list[str]:
    names = list(onnxruntime.get_available_providers())
    names += [d.ep_name for d in onnxruntime.get_ep_devices() if d.ep_name not in names]
    return names + [n for n, p in PLUGIN_PACKAGES.items() if n not in names and importlib.util.find_spec(p)]


def _unavailable(options: RuntimeOptions, problem: str, hint: str) -> None:
    if options.strict:
        raise UnsupportedError(f"{problem}; strict mode does not fall back to CPU: {hint}")
    warnings.warn(f"{problem}; falling back to CPU: {hint}", UserWarning, stacklevel=4)


def session_options(options: RuntimeOptions, data_dir=None):
    import onnxruntime

    so = onnxruntime.SessionOptions()
    so.intra_op_num_threads = options.threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3  # onnxruntime's own warnings are not actionable for users
    # Encoder and decoder sessions alternate every step: spinning threads of one session steal the
    # cores from the other (measured: 85 ms vs 47 ms per encoder+decoder pair on 2 cores).
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.record_ep_graph_assignment_info", "1")  # for placement()
    if data_dir is not None:
        so.add_session_config_entry("session.model_external_initializers_file_folder_path", str(data_dir))
    for key, value in options.session_config:
        so.add_session_config_entry(key, value)
    return so


def create_session(graph, options: RuntimeOptions, data_dir=None, label=None, dims=None):
    """Load one graph, from a path or from its bytes (then `data_dir` holds its external data files, and
    `label` names it in errors); errors from onnxruntime become a BundleError naming the graph. The
    requested providers are checked against where the nodes landed (module docstring). `dims` fixes
    named input dimensions ({name: size}; names the graph lacks are ignored): onnxruntime then optimizes
    the graph as if it had been exported with those sizes."""
    import onnxruntime

    so = session_options(options, data_dir)
    for name, size in (dims or {}).items():
        so.add_free_dimension_override_by_name(name, size)
    chosen = plan(options)
    if any(c.name == "DmlExecutionProvider" for c in chosen):  # DirectML runs neither (its documentation)
        so.enable_mem_pattern = False
        so.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    name = str(graph if data_dir is None else label)
    if options.strict and chosen:
        so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    providers = None
    if any(c.devices for c in chosen):  # plugins attach through the session options, and then all must
        for choice in chosen:
            if choice.devices:
                so.add_provider_for_devices(choice.devices, choice.options)
            else:
                so.add_provider(choice.name, choice.options)
    else:
        providers = [(c.name, c.options) for c in chosen] + [CPU]
    try:
        session = onnxruntime.InferenceSession(graph if data_dir is not None else str(graph), so, providers=providers)
    except Exception as exc:  # onnxruntime raises its own exception types for corrupt graphs
        if options.strict and chosen:
            raise UnsupportedError(f"{name}: strict mode, and {', '.join(c.name for c in chosen)} cannot run "
                                   f"every node of this graph ({str(exc)[:300]}); export the bundle for this "
                                   "accelerator (--target npu) or drop --strict") from None
        raise BundleError(f"{name}: onnxruntime cannot load this graph ({str(exc)[:300]}); re-export the bundle") from None
    _check_placement(session, chosen, options, name)
    return session


def placement(session) -> dict[str, collections.Counter] | None:
    """Provider -> Counter of the op types of the nodes it runs; None when onnxruntime did not record
    it. Nodes are counted after onnxruntime's basic graph optimizations."""
    try:
        subgraphs = session.get_provider_graph_assignment_info()
    except Exception:  # an onnxruntime without the API, or the config entry not set
        return None
    placed: dict[str, collections.Counter] = {}
    for subgraph in subgraphs:
        placed.setdefault(subgraph.ep_name, collections.Counter()).update(n.op_type for n in subgraph.get_nodes())
    return placed


def _check_placement(session, chosen: list[Choice], options: RuntimeOptions, name: str) -> None:
    if not chosen:
        return
    placed = placement(session)
    if placed is None:
        return
    idle = [c.name for c in chosen if not sum(placed.get(c.name, {}).values())]
    on_cpu = sum(placed.get(CPU, {}).values())
    if options.strict and on_cpu:
        raise UnsupportedError(f"{name}: strict mode, and {on_cpu} nodes would run on the CPU provider "
                               f"({_top(placed[CPU])}); export the bundle for this accelerator (--target npu)")
    if idle:
        where = "; ".join(f"{provider} {sum(ops.values())} ({_top(ops)})" for provider, ops in placed.items())
        warnings.warn(f"{name}: {', '.join(idle)} took no node of this graph; the nodes run on: {where}. "
                      "`voxedge info --providers ...` shows the placement; docs/hardware.md says which bundle suits "
                      "which accelerator", UserWarning, stacklevel=3)


def _top(ops: collections.Counter, n: int = 4) -> str:
    return ", ".join(f"{op} x{count}" for op, count in ops.most_common(n)) or "none"


def graph_placements(bundle, options: RuntimeOptions) -> dict:
    """Every graph of a bundle opened with `options`: {graph: {provider: {"nodes": n, "ops": {op: n}}}}."""
    report = {}
    for graph in bundle.manifest["graphs"]:
        session = create_session(bundle.graph_bytes(graph), options, data_dir=bundle.root,
                                 label=bundle.graph_path(graph))
        placed = placement(session) or {}
        report[graph] = {provider: {"nodes": sum(ops.values()), "ops": dict(ops.most_common())}
                         for provider, ops in placed.items()}
    return report
