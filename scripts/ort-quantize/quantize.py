"""onnxruntime's own post-training quantizer, as a user would call it: quantize_static with
MinMax calibration, per-channel weights and the QDQ format (8-bit weights and activations,
onnxruntime's defaults otherwise).

    python quantize.py MODEL.onnx CALIB.npy OUT.onnx

CALIB.npy: float32 [N, ...] model inputs, exactly what haq calibrates on (the bench writes it).
"""
import sys

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, quantize_static


class Reader(CalibrationDataReader):
    def __init__(self, name: str, data: np.ndarray, batch: int = 64):
        self.items = iter([{name: data[i : i + batch]} for i in range(0, len(data), batch)])

    def get_next(self):
        return next(self.items, None)


def main() -> None:
    model, calib, out = sys.argv[1], sys.argv[2], sys.argv[3]
    data = np.load(calib).astype(np.float32)
    graph = onnx.load(model).graph
    initializers = {i.name for i in graph.initializer}
    name = next(i.name for i in graph.input if i.name not in initializers)
    quantize_static(
        model,
        out,
        Reader(name, data),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        calibrate_method=CalibrationMethod.MinMax,
    )


if __name__ == "__main__":
    main()
