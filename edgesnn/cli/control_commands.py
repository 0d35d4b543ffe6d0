"""evolve, sim: SNN controllers that mimic PID, flown on simulated blimps."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from edgesnn.cli.model_commands import _positive
from edgesnn.errors import EdgesnnError
from edgesnn.io import check_writable

SCHEDULE = "0.5,1.0,1.5,1.0,0.5"


def register(sub: argparse._SubParsersAction) -> None:
    from edgesnn.controllers.evolution import ENGINES
    from edgesnn.controllers.network import VARIANTS
    from edgesnn.controllers.snn_controller import NAMED_CONTROLLERS

    p = sub.add_parser(
        "evolve", help="evolve an SNN controller that mimics a PID term (extra 'evolve')",
        description="Evolve a spiking controller with CMA-ES (DEAP) so that its output on "
                    "recorded error sequences matches the PD (or I) term of the blimp's PID: "
                    "fitness = MAE + (1 - Pearson rho). The whole population is simulated at "
                    "once in numpy; --engine spreads it over processes or a Dask cluster. "
                    "The best controller (lowest loss over all training sequences) is written "
                    "as a quantized edgesnn model; held-out losses are printed.",
        epilog="example: edgesnn evolve --target pd --logs DATA/blimp_flights "
               "--generations 20000 --out pd.esnn")
    p.add_argument("--target", choices=("pd", "i"), default="pd", help="PID term to mimic (pd)")
    p.add_argument("--variant", choices=VARIANTS, default="lif",
                   help="hidden neurons: lif, r-lif (recurrent), iwta-lif (adaptive thresholds), "
                        "r-iwta-lif (lif)")
    p.add_argument("--neurons", type=_positive, default=40, help="neurons per layer, even (40)")
    p.add_argument("--generations", type=_positive, default=2000, help="CMA-ES generations (2000)")
    p.add_argument("--population", type=_positive, default=50, help="individuals per generation (50)")
    p.add_argument("--sequences-per-generation", type=_positive, default=1,
                   help="training sequences drawn per generation (1, as in the paper)")
    p.add_argument("--logs", type=Path,
                   help="folder of real flight-log CSVs (PD target: training data and held-out "
                        "flights); without it PD trains on simulated flights only")
    p.add_argument("--test-flights", help="comma-separated flight stamps to hold out "
                                          "(default: the flights flown by the conventional PID)")
    p.add_argument("--sim-sequences", type=int, default=None,
                   help="simulated training flights (default: 16; 0 for PD with --logs, where "
                        "the real errors generalise better to held-out flights)")
    p.add_argument("--engine", choices=ENGINES, default="local",
                   help="serial: this process; local: worker processes (default); dask: a Dask "
                        "cluster (extra 'distributed')")
    p.add_argument("--workers", type=_positive, default=None, help="processes (default: all cores)")
    p.add_argument("--scheduler", help="Dask scheduler address (tcp://host:8786); default: a "
                                       "local Dask cluster of --workers processes")
    p.add_argument("--seed", type=int, default=0, help="random seed (0)")
    p.add_argument("--init", default="uniform",
                   help="initial CMA-ES mean: uniform (random in the bounds, as in the paper), "
                        "ladder (a hand-built spiking PD or I controller), or a controller MODEL "
                        "file of the same structure to refine")
    p.add_argument("--sigma", type=float, default=None,
                   help="initial CMA-ES step in the unit cube of the parameters (default: 0.1 = "
                        "range/10 from a uniform start, 0.01 to refine a ladder or MODEL)")
    p.add_argument("--flight-weight", type=float, default=0.0,
                   help="also fly every individual on the fitted blimp (0.5/1.0/0.5 m, 40 s each) "
                        "and add this weight x (worst overshoot + steady-state band, in m) to its "
                        "fitness; 0 = mimic only, as in the paper (0)")
    p.add_argument("--fly-with", type=Path, metavar="MODEL",
                   help="controller model whose command is added in those flights (e.g. the SNN PD "
                        "when evolving the I)")
    p.add_argument("--checkpoint", type=Path, help="save the run here every validation "
                                                   "(default: OUT with .ckpt.npz)")
    p.add_argument("--resume", action="store_true", help="continue the run in --checkpoint")
    p.add_argument("--out", "-o", type=Path, required=True, help="model file to write")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=cmd_evolve)

    s = sub.add_parser(
        "sim", help="fly controllers on a simulated blimp and score the flights",
        description="Closed loop: a controller (the onboard PID, the shipped evolved SNN, or "
                    "your evolved SNN models, e.g. PD+I as 'pd.esnn+i.esnn') flies a blimp model "
                    "through a set-point schedule. Prints overshoot (up and down steps), settling "
                    "time, steady-state error band and RMSE per controller; with --logs also the "
                    "mimic loss of SNN PD models on the real logged errors. Named controllers: "
                    + "; ".join(f"{k}: {v}" for k, v in NAMED_CONTROLLERS.items()) + ".",
        epilog="example: edgesnn sim --controller pid --controller pd.esnn+i.esnn --plot flight.png")
    s.add_argument("--controller", "-c", action="append",
                   help=f"{' | '.join(NAMED_CONTROLLERS)} | MODEL[+MODEL...]; repeat to compare "
                        "(default: pid and snn)")
    s.add_argument("--plant", choices=("physical", "identified"), default="physical",
                   help="physical: fitted blimp model with dead zone, lag, sensor noise; "
                        "identified: the 10 Hz transfer function from earlier work")
    s.add_argument("--schedule", default=SCHEDULE, help=f"set-points in m ({SCHEDULE})")
    s.add_argument("--seconds", type=float, default=70.0, help="seconds per set-point (70)")
    s.add_argument("--backend", default="numpy-float", help="backend for SNN models")
    s.add_argument("--seed", type=int, default=0, help="sensor-noise seed (0)")
    s.add_argument("--logs", type=Path, help="flight-log folder for the mimic loss on real errors")
    s.add_argument("--plot", type=Path, help="write altitude/set-point/command PNG here")
    s.add_argument("--json", action="store_true", help="print the results as JSON")
    s.set_defaults(func=cmd_sim)


def cmd_evolve(args) -> int:
    from edgesnn.controllers.evolution import (EvolutionConfig, evolve, make_engine,
                                               population_flight_loss, population_loss)
    from edgesnn.controllers.network import ControllerSpec
    from edgesnn.controllers.pipeline import (controller_model, flown_snn_losses, mimic_datasets,
                                              model_mimic_losses)
    from edgesnn.modelfile import save
    from edgesnn.runtime import Runtime

    check_writable(args.out)
    spec = ControllerSpec(args.target, args.variant, args.neurons)
    initial = _initial(args.init, spec)
    sigma = args.sigma if args.sigma is not None else (0.1 if initial is None else 0.01)
    if not 0.0 < sigma <= 1.0:
        raise EdgesnnError(f"--sigma must be in (0, 1]; got {args.sigma}")
    config = EvolutionConfig(spec=spec, generations=args.generations, population=args.population,
                             sigma=sigma, sequences_per_generation=args.sequences_per_generation,
                             seed=args.seed, init=args.init, flight=_flight_task(args))
    flights = args.test_flights.split(",") if args.test_flights else None
    sim_sequences = args.sim_sequences
    if sim_sequences is None:
        sim_sequences = 0 if args.target == "pd" and args.logs else 16
    train, test, held_out = mimic_datasets(args.target, args.logs, sim_sequences, args.seed,
                                           flights)
    checkpoint = args.checkpoint or args.out.with_suffix(".ckpt.npz")
    # one BLAS thread per worker: the per-step matrices are small and 2 workers with
    # 2 BLAS threads each on 2 cores run 10x slower than with one
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    engine = make_engine(args.engine, args.workers, args.scheduler)
    started = time.perf_counter()
    try:
        result = evolve(config, train, engine, checkpoint=checkpoint, resume=args.resume,
                        progress=not args.json, initial=initial)
    finally:
        engine.close()
    seconds = time.perf_counter() - started
    model = controller_model(spec, result.best, train, {
        "name": f"snn-{args.target}-{args.variant}",
        "evolution": config.as_dict() | {"engine": args.engine, "train_loss": result.best_loss,
                                         "held_out": held_out}})
    test_losses = model_mimic_losses([Runtime(model)], test)
    model.metadata["evolution"]["test_loss"] = float(test_losses.mean())
    save(model, args.out)
    flown = flown_snn_losses(args.logs, test) if args.logs and args.target == "pd" else {}
    report = {"target": args.target, "variant": args.variant, "generations": args.generations,
              "seconds": round(seconds, 1), "train_loss": round(result.best_loss, 4),
              "best_generation": result.generation, "test_loss": round(float(test_losses.mean()), 4),
              "test": {n: round(float(v), 4) for n, v in zip(test.names, test_losses)},
              "held_out": held_out, "out": str(args.out),
              "paper_flown_snn": {n: round(v, 4) for n, v in flown.items()},
              "check_population_loss": round(float(population_loss(spec, result.best, test)[0]), 4)}
    if config.flight is not None:
        report["flight_loss_m"] = round(float(population_flight_loss(spec, result.best,
                                                                     config.flight)[0]), 4)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"\n{args.target.upper()} controller ({args.variant}, {spec.neurons}+{spec.neurons} neurons), "
          f"{args.generations} generations in {seconds:.0f} s")
    if config.flight is None:
        print(f"training loss (MAE + 1 - rho, all {len(train)} training sequences): "
              f"{result.best_loss:.3f}")
    else:
        print(f"training fitness (MAE + 1 - rho over all {len(train)} training sequences + "
              f"{config.flight.weight:g} x flight loss): {result.best_loss:.3f}; flight loss (worst "
              f"overshoot + steady band) {report['flight_loss_m'] * 100:.1f} cm")
    print(f"held-out: {held_out}")
    print(f"  {'segment':<60}{'loss':>8}" + (f"{'paper SNN':>11}" if flown else ""))
    for name, loss in zip(test.names, test_losses):
        paper = f"{flown[name]:11.3f}" if name in flown else ""
        print(f"  {name:<60}{loss:8.3f}{paper}")
    paper = f"{np.mean([flown[n] for n in test.names if n in flown]):11.3f}" if flown else ""
    print(f"  {'mean':<60}{test_losses.mean():8.3f}{paper}")
    if flown:
        print("  (paper SNN: the evolved SNN that flew the segment, from its logged output)")
    print(f"wrote {args.out}")
    return 0


def _flight_task(args):
    """The closed-loop part of the fitness, from --flight-weight and --fly-with."""
    from edgesnn.controllers.evolution import FlightTask
    from edgesnn.controllers.snn_controller import controller_parameters, controller_spec
    from edgesnn.modelfile import load_model

    if not (np.isfinite(args.flight_weight) and args.flight_weight >= 0):
        raise EdgesnnError(f"--flight-weight must be a non-negative number; got {args.flight_weight}")
    if args.flight_weight == 0:
        if args.fly_with:
            raise EdgesnnError("--fly-with needs a positive --flight-weight")
        return None
    partner = None
    if args.fly_with:
        model = load_model(args.fly_with)
        partner = (controller_spec(model).as_dict(),
                   tuple(float(v) for v in controller_parameters(model)))
    return FlightTask(args.flight_weight, partner=partner)


def _initial(init: str, spec):
    from edgesnn.controllers.network import ladder
    from edgesnn.controllers.snn_controller import controller_parameters, controller_spec
    from edgesnn.modelfile import load_model

    if init == "uniform":
        return None
    if init == "ladder":
        return ladder(spec)
    model = load_model(init)
    if controller_spec(model) != spec:
        raise EdgesnnError(f"--init {init}: a {controller_spec(model)} controller, not {spec}")
    return controller_parameters(model)


def _schedule(text: str) -> list[float]:
    try:
        levels = [float(v) for v in text.split(",")]
    except ValueError:
        raise EdgesnnError(f"--schedule must be comma-separated numbers; got {text!r}") from None
    if not levels or not all(np.isfinite(levels)):
        raise EdgesnnError(f"--schedule must be finite numbers; got {text!r}")
    return levels


def _label(name: str) -> str:
    from edgesnn.controllers.snn_controller import NAMED_CONTROLLERS

    return name.upper() if name in NAMED_CONTROLLERS else "+".join(Path(p).stem for p in name.split("+"))


def cmd_sim(args) -> int:
    from edgesnn.controllers.closed_loop import fly, plot_flight, setpoint_schedule, summarize
    from edgesnn.controllers.plants import IdentifiedBlimp, PhysicalBlimp
    from edgesnn.controllers.snn_controller import SNNController, load_controller

    if args.plot:
        check_writable(args.plot)
    names = args.controller or ["pid", "snn"]
    plant_cls = PhysicalBlimp if args.plant == "physical" else IdentifiedBlimp
    setpoints = setpoint_schedule(_schedule(args.schedule), args.seconds, plant_cls().dt)
    flights, rows = {}, []
    logs = None
    if args.logs:
        from edgesnn.controllers.flight_logs import load_logs
        from edgesnn.controllers.mimic_data import log_sequences
        logs = log_sequences(load_logs(args.logs))
    for name in names:
        controller = load_controller(name, args.backend)
        flight = fly(plant_cls(), controller, setpoints, seed=args.seed)
        label = _label(name)
        flights[label] = flight
        row = {"controller": label} | summarize(flight)
        if logs is not None and isinstance(controller, SNNController):
            row["mimic_loss_real_logs"] = _pd_mimic_loss(controller, logs)
        rows.append(row)
    if args.plot:
        plot_flight(flights, args.plot, title=f"{args.plant} blimp, set-points {args.schedule} m")
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_format_rows(rows))
        if args.plot:
            print(f"wrote {args.plot}")
    return 0


def _pd_mimic_loss(controller, logs) -> float | None:
    """Mean loss of the controller's PD model(s) on the real logged errors."""
    from edgesnn.controllers.pipeline import model_mimic_losses
    from edgesnn.controllers.snn_controller import controller_spec

    runtimes = [rt for rt in controller.runtimes if controller_spec(rt.model).target == "pd"]
    if not runtimes:
        return None
    return round(float(np.mean(model_mimic_losses(runtimes, logs))), 4)


def _format_rows(rows: list[dict]) -> str:
    cols = [("controller", "controller", "{}"), ("overshoot_up_m", "overshoot ↑ cm", "{:.1f}"),
            ("overshoot_down_m", "overshoot ↓ cm", "{:.1f}"), ("settling_s", "settling s", "{:.1f}"),
            ("steady_band_m", "steady band ±cm", "{:.1f}"), ("rmse_m", "RMSE cm", "{:.1f}"),
            ("mimic_loss_real_logs", "PD loss (logs)", "{:.3f}")]
    cols = [c for c in cols if any(r.get(c[0]) is not None for r in rows)]
    width = max(12, *(len(str(r["controller"])) + 2 for r in rows))
    head = f"{'controller':<{width}}" + "".join(f"{t:>17}" for _, t, _ in cols[1:])
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = []
        for key, _, fmt in cols[1:]:
            v = r.get(key)
            if v is None:
                cells.append(f"{'—':>17}")
            else:
                v = v * 100 if key.endswith("_m") else v
                cells.append(f"{fmt.format(v):>17}")
        lines.append(f"{r['controller']:<{width}}" + "".join(cells))
    return "\n".join(lines)
