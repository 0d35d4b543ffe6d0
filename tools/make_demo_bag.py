"""Rebuild the shipped demo sensor recording (edgesnn/assets/demo_sensors.mcap): what
the replay node of `edgesnn demo` publishes.

    python tools/make_demo_bag.py [--out PATH]

- /imu (sensor_msgs/Imu, 20 Hz): two windows of each activity of the synthetic IMU
  generator (unseen subjects, seeds apart from the shipped L2MU's training data), in
  the channel order of the shipped L2MU;
- /image (sensor_msgs/Image, mono8 64x64, 1 Hz): the dusk traverse of the shipped place
  ensemble's synthetic route, place 0 to 23 in order;
- /activity/truth and /place/truth (edgesnn_msgs/Activity and Place): the true label of
  each IMU window (stamped at its last sample) and of each image, for scoring.
"""

import argparse
import shutil
import tempfile
from pathlib import Path

import numpy as np

from edgesnn.data import har
from edgesnn.models.reference import DEMO_SENSOR_BAG, VPR_DEMO_ROUTE
from edgesnn.models.vpr import synthetic
from edgesnn.ros.bag import write_bag
from edgesnn.ros.msgs import Activity, Header, Image, Imu, Place, Vector3, stamp

IMU_SEED = 2024  # the demo's unseen subjects (edgesnn demo's activity part uses it too)


def messages() -> list:
    out = []
    ds = har.synthetic(n_subjects=1, windows_per_class=2, seed=IMU_SEED)
    dt = 1.0 / 20.0
    t = 0.0
    for window, label in zip(ds.x, ds.y):
        for sample in window:
            t += dt
            header = Header(stamp=stamp(t), frame_id="imu")
            out.append(("/imu", Imu(header=header, linear_acceleration=Vector3(*map(float, sample[:3])),
                                    angular_velocity=Vector3(*map(float, sample[3:6]))), t))
        out.append(("/activity/truth", Activity(header=Header(stamp=stamp(t)),
                                                label=ds.classes[label], confidence=1.0), t))
    world = synthetic.make_world(VPR_DEMO_ROUTE["places"], VPR_DEMO_ROUTE["seed"])
    views = synthetic.render(world, "dusk", seed=synthetic.traverse_seed(VPR_DEMO_ROUTE["seed"], "query", 0))
    grey = np.round(views.astype(np.float64).mean(axis=-1)).astype(np.uint8)
    for place, image in enumerate(grey):
        t_img = 0.5 + place * 1.0
        header = Header(stamp=stamp(t_img), frame_id="camera")
        out.append(("/image", Image(header=header, height=image.shape[0], width=image.shape[1],
                                    encoding="mono8", step=image.shape[1],
                                    data=image.ravel().tolist()), t_img))
        out.append(("/place/truth", Place(header=header, place=place, score=1.0), t_img))
    out.sort(key=lambda m: m[2])
    return [(topic, msg, int(round(t * 1e9))) for topic, msg, t in out]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_SENSOR_BAG)
    out = parser.parse_args().out
    with tempfile.TemporaryDirectory() as tmp:
        write_bag(Path(tmp) / "bag", messages())
        [mcap] = list((Path(tmp) / "bag").glob("*.mcap"))
        shutil.copyfile(mcap, out)
    print(f"wrote {out} ({out.stat().st_size:,} bytes)")
