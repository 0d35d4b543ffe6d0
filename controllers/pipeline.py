"""The steps behind ``edgesnn evolve`` / ``edgesnn sim``: data, model files, scoring."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import edgesnn
from edgesnn.controllers.flight_logs import flight_id, load_logs
from edgesnn.controllers.mimic_data import (MimicSet, log_sequences, simulated_i_sequences,
                                            simulated_pd_sequences, split_by_flight)
from edgesnn.controllers.network import ControllerSpec, build_graph, mimic_loss
from edgesnn.controllers.pid import PIDGains
from edgesnn.errors import DataError
from edgesnn.modelfile import Model
from edgesnn.runtime import Runtime

__all__ = ["mimic_datasets", "controller_model", "model_mimic_losses", "flown_snn_losses"]


def mimic_datasets(target: str, logs: str | Path | None, sim_sequences: int, seed: int,
                   test_flights: list[str] | None = None) -> tuple[MimicSet, MimicSet, str]:
    """Training and held-out sequences, and a sentence saying what the held-out set is.

    PD: simulated flights of the fitted blimp plus the real logs' errors; the held-out
    set is whole real flights (default: the flights flown by the conventional
    controller — their logged PD commands are the ground truth). I: simulated
    double-integrator flights; held out: more of them from another seed."""
    if target == "i":
        train = simulated_i_sequences(sim_sequences, seed)
        test = simulated_i_sequences(max(4, sim_sequences // 4), seed + 10_000)
        return train, test, f"{len(test)} simulated double-integrator flights (unseen seed)"
    train = simulated_pd_sequences(sim_sequences, seed) if sim_sequences else MimicSet()
    if logs is None:
        test = simulated_pd_sequences(max(4, sim_sequences // 4), seed + 10_000)
        if not len(train):
            raise DataError("no training data: give --logs or a positive --sim-sequences")
        return train, test, f"{len(test)} simulated PD flights (unseen seed; no --logs given)"
    all_logs = load_logs(logs)
    if test_flights is None:
        test_flights = sorted({flight_id(log) for log in all_logs if log.controller == "pid"})
    train_logs, test_logs = split_by_flight(all_logs, test_flights)
    if not test_logs:
        raise DataError(f"{logs}: no log of the held-out flight(s) {', '.join(test_flights)}")
    train = train + log_sequences(train_logs)
    if not len(train):
        raise DataError("no training data left after holding out the test flights")
    return train, log_sequences(test_logs), (
        f"{len(test_logs)} real flight segments of flight(s) {', '.join(test_flights)}, "
        f"held out from training")


def controller_model(spec: ControllerSpec, vector: np.ndarray, calibration: MimicSet,
                     metadata: dict, dt: float = 0.1) -> Model:
    """A quantized model file for the controller, its spec and vector in the metadata
    (so ``edgesnn sim`` and later evolution runs can read it back)."""
    meta = {"task": "controller", "inputs": ["error [m]"], "outputs": ["command"],
            "controller": {**spec.as_dict(), "parameters": [float(v) for v in vector],
                           "gains": vars(PIDGains())}} | metadata
    model = Model(build_graph(spec, vector, dt=dt), metadata=meta)
    return edgesnn.quantize(model, [e[:, None] for e in calibration.errors])


def model_mimic_losses(runtimes: list[Runtime], data: MimicSet) -> np.ndarray:
    """Loss per sequence of the summed outputs of deployed models (not the batched
    evolution simulator), each started fresh on every sequence."""
    losses = []
    for error, target in zip(data.errors, data.targets):
        out = 0.0
        for runtime in runtimes:
            runtime.reset()
            out = out + runtime.run(error[:, None])[:, 0]
        losses.append(float(mimic_loss(out, target)))
    return np.asarray(losses)


def flown_snn_losses(logs: str | Path, data: MimicSet) -> dict[str, float]:
    """Loss of the SNN that actually flew a logged segment (its ``snn_pd`` column), on
    the same errors and target: the paper's own controllers, scored like ours."""
    flown = {log.name: log for log in load_logs(logs) if log.controller == "snn"}
    return {name: float(mimic_loss(flown[name]["snn_pd"], target))
            for name, target in zip(data.names, data.targets) if name in flown}
