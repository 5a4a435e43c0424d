"""What a spec's ``[cases.NAME]`` table may say, checked when the spec loads.

A case has ``args`` (a list), ``kwargs`` (a table), ``dims``, ``description``,
``shared`` and ``condition``. Each argument (and each keyword argument) is either a
plain TOML value (``0.1``, ``"mean"``, ``[1, 2]``), passed as it is, or a table with
exactly one generator key (see :mod:`dlgrade.graders.inputs`, which builds them):

- ``{normal = shape, loc, scale, bound}``, ``{uniform = shape, low, high}``,
  ``{randint = shape, low, high, cover}``, ``{value = literal}``, each with ``dtype``,
  ``where`` and ``set``, ``torch`` and ``requires_grad``;
- ``{rng = true}``, a numpy Generator built where the call runs.

A table is never a literal by accident: ``{gaussian = [4, 3]}`` is an unknown
generator, not a dict handed to the reference. A literal table is written
``{value = {lr = 0.1}}``. Everything here is static (no reference, no draw), so
``dlgrade list`` reports it too; each problem is one line naming the case, the
argument and the key, with the likely meant name.
"""
from __future__ import annotations

import difflib

import numpy as np

from dlgrade.graders.checks.protocol import _shown as shown
from dlgrade.graders.checks.protocol import unknown_word

CASE_KEYS = ("args", "kwargs", "dims", "description", "shared", "condition")
GENERATORS = ("normal", "uniform", "randint", "value", "rng")
# what each generator takes besides its own key; COMMON is every array's
COMMON = ("dtype", "where", "set", "torch", "requires_grad")
OPTIONS = {
    "normal": ("loc", "scale", "bound", *COMMON),
    "uniform": ("low", "high", *COMMON),
    "randint": ("low", "high", "cover", *COMMON),
    "value": COMMON,
    "rng": (),
}
# names an author may reach for first (numpy's, torch's, statistics'): the did-you-mean
SYNONYMS = {"gaussian": "normal", "randn": "normal", "norm": "normal", "rand": "uniform",
            "integers": "randint", "choice": "randint", "literal": "value",
            "array": "value", "const": "value", "constant": "value", "values": "value",
            "generator": "rng"}
# the dtypes a did-you-mean offers (any name numpy reads is accepted)
DTYPES = ("bool", "complex128", "complex64", "float16", "float32", "float64",
          "int16", "int32", "int64", "int8", "uint8")


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _whole(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _numbers(v) -> np.ndarray | None:
    """``v`` as a float array when it is a number or a rectangular (nested) list of numbers, else None."""
    def leaves_ok(x) -> bool:
        return all(leaves_ok(y) for y in x) if isinstance(x, list) else (_number(x) or isinstance(x, bool))

    if not leaves_ok(v):
        return None
    try:
        return np.asarray(v, dtype=float)
    except (TypeError, ValueError):
        return None


def _guess(word: str, known, synonyms=None) -> str:
    """``; did you mean 'normal'?`` for a name close to a known one or to a synonym of one."""
    synonyms = {**(synonyms or {}), **{k: k for k in known}}
    close = difflib.get_close_matches(word, list(synonyms), n=1)
    return f"; did you mean {synonyms[close[0]]!r}?" if close else ""


def case_problem(name: str, spec, dims: dict | None = None) -> str | None:
    """What is wrong with one ``[cases.NAME]`` table, or None. ``dims``: the spec's ``[dims]``."""
    where = f"case {name!r}"
    if not isinstance(spec, dict):
        return f"{where} must be a table"
    for key in spec:
        if key not in CASE_KEYS:
            return f"{where}: {_unknown_key(key)}"
    if "shared" in spec and not isinstance(spec["shared"], bool):
        return f"{where}: shared must be true or false"
    cond = spec.get("condition")
    if cond is not None and (not isinstance(cond, str) or ":" not in cond):
        return f"{where}: condition must look like 'module:function'"
    if "description" in spec and not (isinstance(spec["description"], str) and spec["description"].strip()):
        return f"{where}: description must be a non-empty string (got {shown(spec['description'])})"
    own = spec.get("dims", {})
    if not isinstance(own, dict) or not all(_whole(v) and v > 0 for v in own.values()):
        return f"{where}: dims must be a table of names = positive whole numbers, like N = 8"
    args, kwargs = spec.get("args", []), spec.get("kwargs", {})
    if not isinstance(args, list):
        return f"{where}: args must be a list"
    if not isinstance(kwargs, dict):
        return f"{where}: kwargs must be a table"
    sizes = {**(dims or {}), **own}
    labelled = [(f"argument {i + 1}", a) for i, a in enumerate(args)]
    labelled += [(f"keyword argument {k!r}", a) for k, a in kwargs.items()]
    for label, arg in labelled:
        problem = arg_problem(arg, sizes)
        if problem:
            return f"{where}: {label}: {problem}"
    return None


def _unknown_key(key: str) -> str:
    return f"unknown key {key!r}{unknown_word(key, CASE_KEYS)}"


def arg_problem(arg, dims: dict) -> str | None:
    """What is wrong with one argument of a case, or None; ``dims`` the sizes it may name."""
    if not isinstance(arg, dict):
        return None  # a plain value, passed as it is
    gens = [k for k in arg if k in GENERATORS]
    if not gens:
        everything = {o for opts in OPTIONS.values() for o in opts}
        unknown = [k for k in arg if k not in everything]
        if unknown:
            return (f"unknown generator {unknown[0]!r}{_guess(unknown[0], GENERATORS, SYNONYMS)} "
                    f"(known: {', '.join(sorted(GENERATORS))})")
        return (f"no generator: a table argument needs one of {', '.join(sorted(GENERATORS))} "
                "(a literal table is written {value = {...}})")
    if len(gens) > 1:
        return f"two generators, {gens[0]!r} and {gens[1]!r}: give one"
    gen = gens[0]
    for key in arg:
        if key == gen or key in OPTIONS[gen]:
            continue
        owners = [g for g in GENERATORS if key in OPTIONS[g]]
        if owners:
            return f"{key} is only for a {' or '.join(owners)} argument"
        return f"unknown option {key!r} of {gen}{unknown_word(key, OPTIONS[gen])}"
    return _GENERATOR_CHECKS[gen](arg, dims) or _common_problem(gen, arg, dims)


def _shape(arg: dict, gen: str, dims: dict) -> tuple[str | None, tuple | None]:
    """(problem, the shape when every size is known) of a generator's shape."""
    shape = arg[gen]
    like = f'{gen} must be a shape, a list of sizes or [dims] names, like [4, "N"] (got {shown(shape)})'
    if not isinstance(shape, list):
        return like, None
    sizes = []
    for d in shape:
        if isinstance(d, str):
            size = _dim_problem(d, dims)
            if size:
                return size, None
            sizes.append(int(dims[d]))
        elif _whole(d) and d >= 0:
            sizes.append(d)
        else:
            return like, None
    return None, tuple(sizes)


def _dim_problem(name: str, dims: dict) -> str | None:
    if name in dims:
        return None
    known = ", ".join(dims) if dims else "none"
    same = {d.lower(): d for d in dims}  # 'n' for 'N'
    guess = f"; did you mean {same[name.lower()]!r}?" if name.lower() in same else _guess(name, dims)
    return f"unknown dimension {name!r}{guess} (dims: {known})"


def _normal(arg: dict, dims: dict) -> str | None:
    problem, shape = _shape(arg, "normal", dims)
    if problem:
        return problem
    if "loc" in arg and not _number(arg["loc"]):
        return f"loc must be a number (got {shown(arg['loc'])})"
    scale = arg.get("scale", 1.0)
    scales = None if isinstance(scale, bool) else _numbers(scale)
    if scales is None:
        return f"scale must be a number or a list of numbers (got {shown(scale)})"
    if not (scales >= 0).all():
        return f"scale must not be negative (got {shown(scale)})"
    if shape is not None and scales.ndim:
        try:
            np.broadcast_to(scales, shape)
        except ValueError:
            return f"scale of shape {scales.shape} does not broadcast against the shape {shape}"
    if "bound" in arg:
        half = 0.5 * float(scales.max()) if scales.size else 0.0
        b = arg["bound"]
        if not _number(b) or not b >= half:
            return f"bound must be a number of at least half the scale ({half:g})"
    return None


def _uniform(arg: dict, dims: dict) -> str | None:
    problem, _ = _shape(arg, "uniform", dims)
    if problem:
        return problem
    for key in ("low", "high"):
        if key in arg and not _number(arg[key]):
            return f"{key} must be a number (got {shown(arg[key])})"
    return None


def _randint(arg: dict, dims: dict) -> str | None:
    problem, _ = _shape(arg, "randint", dims)
    if problem:
        return problem
    if "high" not in arg:
        return 'randint needs high, the first value it never draws, like high = 10 or high = "C"'
    bounds = {}
    for key, default in (("low", 0), ("high", None)):
        v = arg.get(key, default)
        if isinstance(v, str):
            unknown = _dim_problem(v, dims)
            if unknown:
                return f"{key}: {unknown}"
            v = dims[v]
        elif not _whole(v):
            return f'{key} must be a whole number or a [dims] name, like "C" (got {shown(v)})'
        bounds[key] = v
    if bounds["high"] <= bounds["low"]:
        return f"high must be above low (got low = {bounds['low']}, high = {bounds['high']})"
    if "cover" in arg and not isinstance(arg["cover"], bool):
        return f"cover must be true or false (got {shown(arg['cover'])})"
    return None


def _value(arg: dict, dims: dict) -> str | None:
    value = arg["value"]
    if isinstance(value, dict):  # a literal table, handed over as a dict
        extra = [k for k in arg if k != "value"]
        if extra:
            return f"a table value is passed as it is and takes no options (got {extra[0]!r})"
        return None
    if _numbers(value) is None:
        return ("value must be a number, a list of numbers (the same length in every row) or a table "
                f"(got {shown(value)})")
    return None


def _rng(arg: dict, dims: dict) -> str | None:
    if arg["rng"] is not True:
        return f"rng must be true (got {shown(arg['rng'])})"
    return None


_GENERATOR_CHECKS = {"normal": _normal, "uniform": _uniform, "randint": _randint,
                     "value": _value, "rng": _rng}


def dtype_problem(dtype) -> str | None:
    if not isinstance(dtype, str):
        return f'dtype must be a string, like "float32" (got {shown(dtype)})'
    try:
        np.dtype(dtype)
    except TypeError:
        return f"unknown dtype {dtype!r}{_guess(dtype, DTYPES)}"
    return None


def _common_problem(gen: str, arg: dict, dims: dict) -> str | None:
    """dtype, where/set, torch and requires_grad, on any generator of an array."""
    if gen == "rng" or isinstance(arg.get("value"), dict):
        return None
    if "dtype" in arg:
        problem = dtype_problem(arg["dtype"])
        if problem:
            return problem
    for key in ("torch", "requires_grad"):
        if key in arg and not isinstance(arg[key], bool):
            return f"{key} must be true or false (got {shown(arg[key])})"
    if arg.get("requires_grad") and not arg.get("torch"):
        return "requires_grad = true needs torch = true (only a tensor has a gradient)"
    dtype = np.dtype(arg.get("dtype", "int64" if gen == "randint" else "float64"))
    if arg.get("requires_grad") and dtype.kind not in "fc":
        return f"requires_grad = true needs a floating dtype (this argument is {dtype.name})"
    if ("where" in arg) != ("set" in arg):
        return "where and set go together: where = [[0, 1]], set = inf puts inf at [0, 1]"
    if "where" in arg:
        idx = arg["where"]
        if not (isinstance(idx, list) and idx and all(isinstance(i, list) and all(_whole(k) for k in i)
                                                     for i in idx)):
            return f"where must be a list of indices, like [[0, 1], [2, 3]] (got {shown(idx)})"
        if not (_number(arg["set"]) or isinstance(arg["set"], bool)):
            return f"set must be a number, like inf or -1e9 (got {shown(arg['set'])})"
        shape = np.shape(arg["value"]) if gen == "value" else _shape(arg, gen, dims)[1]
        for i in idx:
            if shape is not None and (len(i) > len(shape)
                                      or any(not -n <= k < n for k, n in zip(i, shape))):
                return f"where: index {shown(i)} is outside the shape {tuple(shape)}"
    return None
