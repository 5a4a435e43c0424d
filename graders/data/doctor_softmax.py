# dlgrade doctor's own submission: a correct stable-softmax that also reports
# which of dlgrade's secret files it can read from where student code runs.
import os

import numpy as np

SECRET_PATHS = []  # filled in by dlgrade doctor


def _visible(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return os.path.getsize(path) > 0 or not os.path.samefile(path, os.devnull)
    except OSError:
        return False


for _path in SECRET_PATHS:
    print(("dlgrade-doctor: visible " if _visible(_path) else "dlgrade-doctor: hidden ") + _path)


def softmax(z, axis=-1):
    shifted = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return e / np.sum(e, axis=axis, keepdims=True)
