"""The provider simulator: simulated vendors that speak the OpenAI and Anthropic APIs."""

from assay.simulator.finetune import FineTuneAPI, tuned_profile
from assay.simulator.profiles import (
    Dist,
    Faults,
    FineTuning,
    Incident,
    ListPrice,
    ModelProfile,
    RateLimit,
    SafetyBehaviour,
    SimulatorSpec,
    Vendor,
    builtin_spec,
    load_spec,
)
from assay.simulator.serve import RunningSimulator, SimulatorProcess, serve_forever, start_simulator
from assay.simulator.server import VendorServer

__all__ = [
    "Dist",
    "Faults",
    "FineTuneAPI",
    "FineTuning",
    "Incident",
    "ListPrice",
    "ModelProfile",
    "RateLimit",
    "RunningSimulator",
    "SafetyBehaviour",
    "SimulatorProcess",
    "SimulatorSpec",
    "Vendor",
    "VendorServer",
    "builtin_spec",
    "load_spec",
    "serve_forever",
    "start_simulator",
    "tuned_profile",
]
