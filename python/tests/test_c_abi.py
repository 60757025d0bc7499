"""recommend_batch returns exactly what the C ABI returns: every user's items and score bits
equal pocketrec_recommend's through libpocketrec (loaded with ctypes from POCKETREC_LIB, which
scripts/python-test.sh sets; skipped without it)."""

import ctypes
import os

import numpy as np
import pytest

import pocketrec

LIB = os.environ.get("POCKETREC_LIB")
pytestmark = pytest.mark.skipif(not LIB, reason="POCKETREC_LIB (libpocketrec.so) not given")


def test_recommend_batch_equals_the_c_abi(tmp_path):
    lib = ctypes.CDLL(LIB)
    lib.pocketrec_open.argtypes = [ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    lib.pocketrec_open.restype = ctypes.c_int
    lib.pocketrec_recommend.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint64,
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.c_size_t,
        ctypes.c_size_t,
        ctypes.POINTER(ctypes.c_uint64),
        ctypes.POINTER(ctypes.c_float),
        ctypes.POINTER(ctypes.c_size_t),
    ]
    lib.pocketrec_recommend.restype = ctypes.c_int
    lib.pocketrec_close.argtypes = [ctypes.c_void_p]

    rng = np.random.default_rng(11)
    users = rng.standard_normal((500, 32)).astype(np.float32)
    items = rng.standard_normal((2000, 32)).astype(np.float32)
    users[rng.random(users.shape) > 0.2] = 0.0
    items[rng.random(items.shape) > 0.2] = 0.0
    path = tmp_path / "m.prec"
    pocketrec.export(users, items, str(path), values="i8")
    model = pocketrec.Model(str(path))
    asked = model.ids("user")
    k = 20
    ids, scores = model.recommend_batch(asked, k=k, threads=2)

    handle = ctypes.c_void_p()
    assert lib.pocketrec_open(str(path).encode(), ctypes.byref(handle)) == 0
    try:
        out_items = (ctypes.c_uint64 * k)()
        out_scores = (ctypes.c_float * k)()
        n = ctypes.c_size_t()
        for i, user in enumerate(asked):
            status = lib.pocketrec_recommend(
                handle, int(user), None, 0, k, out_items, out_scores, ctypes.byref(n)
            )
            assert status == 0
            assert n.value == k
            assert [int(x) for x in out_items] == [int(x) for x in ids[i]]
            c_scores = np.frombuffer(out_scores, dtype=np.float32)
            assert c_scores.tobytes() == scores[i].tobytes()  # the same bits
    finally:
        lib.pocketrec_close(handle)
