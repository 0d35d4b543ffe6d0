"""Rebuild the shipped demo place-recognition ensemble (edgesnn/assets/vpr-synthetic.esnn).

    python tools/make_vpr_demo.py [--out FILE]

The route is the seeded synthetic one (edgesnn.models.vpr.synthetic) with the
settings in edgesnn.models.reference.VPR_DEMO_ROUTE; references are its day and
overcast traverses, and the removal threshold is chosen on an extra night traverse
that is none of the demo's queries. Small on purpose (2 systems x 2 modules x 4 views
of 24 places, about 0.6 MB): a demo of the pipeline that `edgesnn demo` runs in a
second, not a model for a real route.
"""

import argparse
from pathlib import Path

from edgesnn import save
from edgesnn.models.reference import VPR_DEMO_MODEL, VPR_DEMO_ROUTE
from edgesnn.models.vpr import ensemble, metrics, synthetic
from edgesnn.models.vpr.preprocess import Preprocessing
from edgesnn.models.vpr.views import ViewConfig

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=VPR_DEMO_MODEL)
    out = parser.parse_args().out
    places, seed = VPR_DEMO_ROUTE["places"], VPR_DEMO_ROUTE["seed"]
    pre = Preprocessing()
    world = synthetic.make_world(places, seed)
    reference = synthetic.reference_traverses(world, seed, pre)
    extra_night = synthetic.traverse_seed(seed, "query", len(synthetic.QUERY_CONDITIONS))
    calibration = pre(synthetic.render(world, synthetic.HARDEST, seed=extra_night))
    trained = ensemble.train_place_model(
        reference, pre, systems=2, places_per_module=places // 2, config=ViewConfig(shifts=2),
        seed=seed, calibration=(calibration, metrics.ground_truth(places, places)))
    model = ensemble.quantize_place_model(trained.to_model(), reference)
    size = save(model, out)
    print(f"wrote {out} ({size} bytes); removal threshold {trained.threshold}, "
          f"removed per module {trained.removed_per_module().tolist()}")
