"""Camera image → place: the place-recognition ensemble scores every place of its route.

Subscribes ``image`` (sensor_msgs/Image, sensor-data QoS; encodings mono8, rgb8 and
bgr8); publishes ``place`` (edgesnn_msgs/Place: the best place's index on the reference
route and its ensemble score, the sum over systems of the best view's drive) with the
image's header. An image in another encoding, or whose data does not fill step x
height bytes, is rejected with a logged error (once per run of such images); the
node keeps running.

Parameters:
  model (string)     place-recognition model file (default: the shipped 24-place demo)
  backend (string)   numpy-int
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np

from edgesnn.backends import get_backend
from edgesnn.errors import InputError
from edgesnn.modelfile import load_model
from edgesnn.models.reference import VPR_DEMO_MODEL
from edgesnn.models.vpr.ensemble import place_metadata, similarity
from edgesnn.ros.msgs import Header, Image, Place
from edgesnn.ros.transport import DEFAULT, SENSOR_DATA, Transport
from edgesnn_ros.common import Episodes, run, text

# sensor_msgs/image_encodings names → channels of one byte each
ENCODINGS = {"mono8": 1, "rgb8": 3, "bgr8": 3}


def image_pixels(msg: Image) -> np.ndarray:
    """The pixels of an Image as uint8 (H, W) grey or (H, W, 3) RGB; InputError naming
    what is wrong with the message."""
    channels = ENCODINGS.get(msg.encoding)
    if channels is None:
        raise InputError(f"unsupported encoding {msg.encoding!r} (this node takes "
                         f"{', '.join(ENCODINGS)})")
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h < 1 or w < 1:
        raise InputError(f"image has no pixels ({w}x{h})")
    if step < w * channels:
        raise InputError(f"step {step} is shorter than a row of {w} {msg.encoding} pixels")
    data = msg.data
    data = (np.frombuffer(data, np.uint8) if isinstance(data, (bytes, bytearray, memoryview))
            else np.asarray(data, np.uint8))  # received messages carry a list of ints
    if data.size != step * h:
        raise InputError(f"{data.size} data bytes where step x height is {step * h}")
    rows = data.reshape(h, step)[:, :w * channels]  # rows may be padded to `step` bytes
    if channels == 1:
        return rows
    pixels = rows.reshape(h, w, 3)
    return pixels[..., ::-1] if msg.encoding == "bgr8" else pixels


class PlaceRecognitionNode:
    def __init__(self, transport: Transport):
        self.transport = transport
        model = load_model(text(transport, "model", str(VPR_DEMO_MODEL)))
        backend = text(transport, "backend", "numpy-int")
        self.layout, self.preprocessing = place_metadata(model)
        self.program = get_backend(backend)(model)
        self.rejected = Episodes(transport, "rejected images")
        self.publisher = transport.publisher("place", Place, DEFAULT)
        transport.subscribe("image", Image, self.on_image, SENSOR_DATA)
        self.summary = (f"{model.metadata.get('name', 'model')} on {backend}: "
                        f"{self.layout.places} places")

    def on_image(self, msg: Image) -> None:
        try:
            features = self.preprocessing(image_pixels(msg))
        except InputError as exc:
            self.rejected.problem("error", f"rejecting images: {exc}")
            return
        self.rejected.ok("images usable again")
        scores = similarity(self.program, features, self.layout)[0]
        best = int(np.argmax(scores))
        self.publisher.publish(Place(
            header=Header(stamp=msg.header.stamp, frame_id=msg.header.frame_id),
            place=best, score=float(scores[best])))


def main(argv: Sequence[str] | None = None) -> int:
    return run(PlaceRecognitionNode, "place_recognition", argv)


if __name__ == "__main__":
    sys.exit(main())
