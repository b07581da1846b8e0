"""Block spaces (``"type": "blocks"``): FBNet / MnasNet / once-for-all style stage spaces from data.

A network is a stem conv, stages of searchable layers, and a head::

    stem   k x k conv (stride s) - BN - act                       to stem.channels
    stage  layers x one block chosen from stage.choices           to stage.channels
           (the first layer of a stage has the stage's stride, the others stride 1)
    head   1x1 conv - BN - act to head.channels, global average pool, linear to num_classes

Blocks (``"blocks"``: name -> block):

- ``mbconv``: 1x1 expand to ``c_in * expand`` channels (left out when expand is 1, unless
  ``"expand_conv": true``), k x k depthwise, optional squeeze-excite, 1x1 project (no act);
  residual when the stride is 1 and the channels match. ``groups`` > 1 makes both 1x1s
  grouped, with a channel shuffle after the expand (ShuffleNet / FBNet ``_g2``).
  Squeeze-excite: global pool, 1x1 conv to max(1, mid // 4) (bias, ReLU), 1x1 conv back
  (bias), gate (hard sigmoid for hswish blocks, sigmoid otherwise), multiply.
- ``conv``: k x k conv - BN - act (``groups`` allowed), no residual.
- ``skip``: the identity, or a 1x1 conv - BN (no act) with the layer's stride where the
  shape changes (FBNet's rule). Skips are how depth varies.

Activations: relu, relu6, hswish, swish (default relu). A square input of any resolution;
each stride-2 layer halves it rounding up ((r - 1) // 2 + 1, as a 'same'-padded conv does).

An architecture string is the chosen block names of the layers joined by ``-``, layer by
layer (stage by stage). Op signatures (latency-table keys) are
``<block>:<c_in>x<r>x<r>-><c_out>/s<stride>`` for each layer that runs (an identity skip
runs nothing), ``stem:<C>x<R>x<R>-><c>/s<stride>`` and ``head:<c>x<r>x<r>-><head>``, so layers of
one shape share an entry, and the keys say the input resolution.
"""

from __future__ import annotations

import copy
import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import Any

import numpy as np

from search_spaces.base import InvalidArchitecture, Probe, ProfilePlan, SearchSpace
from search_spaces.definition import FORMAT, SpaceDefinitionError, register_type

OPS = ("mbconv", "skip", "conv")
ACTS = ("relu", "relu6", "hswish", "swish")
BLOCK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]{0,39}$")
#: Bounds on what one definition may ask for (a definition is untrusted input).
MAX_CHANNELS = 4096
MAX_RESOLUTION = 1024
MAX_LAYERS = 128
MAX_CLASSES = 100_000
MAX_KERNEL = 11
MAX_EXPAND = 16
MAX_BLOCKS = 64
#: the largest network of a space may not exceed these (work bound for profiling, training, export)
MAX_PARAMS = 200_000_000
MAX_MACS = 50_000_000_000

TOP_FIELDS = {"format", "name", "type", "description", "input", "num_classes", "stem", "blocks", "stages", "head"}
BLOCK_FIELDS = {"mbconv": {"op", "kernel", "expand", "se", "groups", "act", "expand_conv"},
                "conv": {"op", "kernel", "groups", "act"},
                "skip": {"op"}}
SOURCE = Path(__file__).with_name("blocks_network.py")


@dataclass(frozen=True)
class Block:
    name: str
    op: str
    kernel: int = 3
    expand: int = 1
    se: bool = False
    groups: int = 1
    act: str = "relu"
    expand_conv: bool = False  # keep the 1x1 expand at expand 1 (FBNet's e1 blocks have it)

    @property
    def has_expand(self) -> bool:
        return self.op == "mbconv" and (self.expand != 1 or self.expand_conv)


@dataclass(frozen=True)
class Layer:
    """Shape of one searchable layer: what its op signature keys on."""

    c_in: int
    c_out: int
    stride: int
    resolution: int  # input height = width

    @property
    def out_resolution(self) -> int:
        return out_resolution(self.resolution, self.stride)

    def key(self) -> str:
        return f"{self.c_in}x{self.resolution}x{self.resolution}->{self.c_out}/s{self.stride}"

    def is_identity(self, block: Block) -> bool:
        return block.op == "skip" and self.c_in == self.c_out and self.stride == 1


def out_resolution(resolution: int, stride: int) -> int:
    """Output side of a 'same'-padded odd-kernel conv (or a 1x1 one) with this stride."""
    return (resolution - 1) // stride + 1


def se_channels(mid: int) -> int:
    return max(1, mid // 4)


# ---- parsing and validation -------------------------------------------------------------
#: errors reported for one definition at most (the rest are summarised in one more line)
MAX_ERRORS = 50


class _Checker:
    def __init__(self) -> None:
        self.errors: list[tuple[str, str]] = []
        self.dropped = 0

    def fail(self, path: str, message: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append((path, message))
        else:
            self.dropped += 1

    def raise_if_any(self) -> None:
        if self.errors:
            more = [("$", f"... and {self.dropped} more errors")] if self.dropped else []
            raise SpaceDefinitionError(self.errors + more)

    def obj(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return {}
        return value

    def int_(self, parent: dict[str, Any], key: str, path: str, lo: int, hi: int, default: int | None = None) -> int:
        if key not in parent:
            if default is None:
                self.fail(f"{path}.{key}", "is required")
                return lo
            return default
        value = parent[key]
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(f"{path}.{key}", f"must be an integer, got {value!r}"[:200])
            return lo if default is None else default
        if not lo <= value <= hi:
            self.fail(f"{path}.{key}", f"must be between {lo} and {hi}, got {value}")
            return lo if default is None else default
        return value

    def kernel(self, parent: dict[str, Any], path: str) -> int:
        k = self.int_(parent, "kernel", path, 1, MAX_KERNEL, default=3)
        if k % 2 == 0:
            self.fail(f"{path}.kernel", f"must be odd (1, 3, 5, 7, ...), got {k}")
            return 3
        return k

    def stride(self, parent: dict[str, Any], path: str, default: int | None) -> int:
        if "stride" not in parent and default is not None:
            return default
        value = parent.get("stride")
        if value not in (1, 2) or isinstance(value, bool):
            self.fail(f"{path}.stride", "must be 1 or 2" if "stride" in parent else "is required (1 or 2)")
            return 1
        return int(value)

    def act(self, parent: dict[str, Any], path: str) -> str:
        value = parent.get("act", "relu")
        if value not in ACTS:
            self.fail(f"{path}.act", f"must be one of {', '.join(ACTS)}, got {value!r}"[:200])
            return "relu"
        return str(value)

    def unknown(self, parent: dict[str, Any], allowed: set[str], path: str) -> None:
        for key in parent:
            if key not in allowed:
                self.fail(f"{path}.{key}" if _plain(key) else f"{path}[{key!r}]",
                          f"unknown field; valid: {', '.join(sorted(allowed))}")


def _plain(key: Any) -> bool:
    return isinstance(key, str) and re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", key) is not None


def _block_path(name: str) -> str:
    return f"$.blocks.{name}" if _plain(name) else f"$.blocks[{name!r}]"


def parse_blocks(obj: dict[str, Any]) -> BlockSpace:
    """Validate a ``"type": "blocks"`` definition (envelope already checked) -> BlockSpace."""
    c = _Checker()
    c.unknown(obj, TOP_FIELDS, "$")
    if "description" in obj and not isinstance(obj["description"], str):
        c.fail("$.description", "must be a string")
    inp = c.obj(obj.get("input"), "$.input")
    c.unknown(inp, {"channels", "resolution"}, "$.input")
    in_channels = c.int_(inp, "channels", "$.input", 1, 64, default=3)
    resolution = c.int_(inp, "resolution", "$.input", 8, MAX_RESOLUTION)
    num_classes = c.int_(obj, "num_classes", "$", 1, MAX_CLASSES)

    stem = c.obj(obj.get("stem"), "$.stem")
    c.unknown(stem, {"channels", "kernel", "stride", "act"}, "$.stem")
    stem_spec = {"channels": c.int_(stem, "channels", "$.stem", 1, MAX_CHANNELS), "kernel": c.kernel(stem, "$.stem"),
                 "stride": c.stride(stem, "$.stem", 1), "act": c.act(stem, "$.stem")}
    head = c.obj(obj.get("head"), "$.head")
    c.unknown(head, {"channels", "act"}, "$.head")
    head_spec = {"channels": c.int_(head, "channels", "$.head", 1, MAX_CHANNELS), "act": c.act(head, "$.head")}

    blocks: dict[str, Block] = {}
    raw_blocks = c.obj(obj.get("blocks"), "$.blocks")
    if isinstance(obj.get("blocks"), dict) and not raw_blocks:
        c.fail("$.blocks", "must name at least one block")
    if len(raw_blocks) > MAX_BLOCKS:
        c.fail("$.blocks", f"at most {MAX_BLOCKS} blocks")
    for name, raw in raw_blocks.items():
        path = _block_path(str(name))
        if not isinstance(name, str) or not BLOCK_NAME.match(name):
            c.fail(path, "block names are letters, digits, '_' and '.' (no '-': it joins the layers of an "
                   "architecture string), at most 40")
            continue
        raw = c.obj(raw, path)
        op = raw.get("op")
        if op not in OPS:
            c.fail(f"{path}.op", f"unknown op {op!r}; valid: {', '.join(OPS)}"[:200])
            continue
        c.unknown(raw, BLOCK_FIELDS[op], path)
        if op == "skip":
            blocks[name] = Block(name, "skip")
            continue
        se = raw.get("se", False)
        if not isinstance(se, bool):
            c.fail(f"{path}.se", "must be true or false")
        expand_conv = raw.get("expand_conv", False)
        if not isinstance(expand_conv, bool):
            c.fail(f"{path}.expand_conv", "must be true or false")
        blocks[name] = Block(name, op, kernel=c.kernel(raw, path),
                             expand=c.int_(raw, "expand", path, 1, MAX_EXPAND, default=1) if op == "mbconv" else 1,
                             se=bool(se) if op == "mbconv" else False,
                             groups=c.int_(raw, "groups", path, 1, MAX_CHANNELS, default=1), act=c.act(raw, path),
                             expand_conv=bool(expand_conv) if op == "mbconv" else False)

    stages: list[dict[str, Any]] = []
    raw_stages = obj.get("stages")
    if not isinstance(raw_stages, list) or not raw_stages:
        c.fail("$.stages", "must be a non-empty list")
        raw_stages = []
    elif len(raw_stages) > MAX_LAYERS:
        c.fail("$.stages", f"at most {MAX_LAYERS} stages")
        raw_stages = raw_stages[:MAX_LAYERS]
    for i, raw in enumerate(raw_stages):
        path = f"$.stages[{i}]"
        raw = c.obj(raw, path)
        c.unknown(raw, {"channels", "stride", "layers", "choices"}, path)
        stage = {"channels": c.int_(raw, "channels", path, 1, MAX_CHANNELS), "stride": c.stride(raw, path, None),
                 "layers": c.int_(raw, "layers", path, 1, MAX_LAYERS), "choices": []}
        choices = raw.get("choices")
        if not isinstance(choices, list) or not choices:
            c.fail(f"{path}.choices", "must be a non-empty list of block names")
            choices = []
        elif len(choices) > MAX_BLOCKS:
            c.fail(f"{path}.choices", f"at most {MAX_BLOCKS} choices")
            choices = choices[:MAX_BLOCKS]
        for j, choice in enumerate(choices):
            if not isinstance(choice, str) or choice not in raw_blocks:
                c.fail(f"{path}.choices[{j}]", f"{choice!r} is not in blocks; valid: {', '.join(map(str, raw_blocks))}"
                       [:300])
            elif choice in stage["choices"]:
                c.fail(f"{path}.choices[{j}]", f"{choice!r} is listed twice")
            else:
                stage["choices"].append(choice)
        stages.append(stage)
    if sum(s["layers"] for s in stages) > MAX_LAYERS:
        c.fail("$.stages", f"at most {MAX_LAYERS} layers in all")
    c.raise_if_any()

    definition = {"format": FORMAT, "name": obj["name"], "type": "blocks",
                  "description": obj.get("description", ""),
                  "input": {"channels": in_channels, "resolution": resolution}, "num_classes": num_classes,
                  "stem": stem_spec,
                  "blocks": {n: _block_dict(b) for n, b in blocks.items()},
                  "stages": stages, "head": head_spec}
    space = BlockSpace(definition, blocks)
    _check_layers(space, c)
    c.raise_if_any()
    top = space.footprint(space.largest_codes())
    if top.params.max() > MAX_PARAMS or top.macs.max() > MAX_MACS:
        raise SpaceDefinitionError([("$", f"the largest network has {int(top.params.max()):,} parameters and "
                                     f"{int(top.macs.max()):,} MACs; at most {MAX_PARAMS:,} and {MAX_MACS:,}")])
    return space


def _block_dict(b: Block) -> dict[str, Any]:
    if b.op == "skip":
        return {"op": "skip"}
    out: dict[str, Any] = {"op": b.op, "kernel": b.kernel, "groups": b.groups, "act": b.act}
    if b.op == "mbconv":
        out.update(expand=b.expand, se=b.se)
        if b.expand_conv:
            out["expand_conv"] = True
    return out


def _check_layers(space: BlockSpace, c: _Checker) -> None:
    """Channel divisibility of grouped convs, layer by layer (reported once per stage and choice)."""
    seen: set[tuple[int, str]] = set()
    for p, layer in enumerate(space.LAYERS):
        s = space.stage_of[p]
        for j, name in enumerate(space.choices[p]):
            b = space.block_by_name[name]
            if b.groups == 1 or (s, name) in seen:
                continue
            mid = layer.c_in * b.expand
            channels = (layer.c_in, layer.c_out) if b.op == "conv" else (layer.c_in, mid, layer.c_out)
            if any(ch % b.groups for ch in channels):
                seen.add((s, name))
                c.fail(f"$.stages[{s}].choices[{j}]", f"block {name!r} has groups {b.groups}, which does not divide "
                       f"the channels {'/'.join(map(str, channels))} of layer {layer.key()}")


register_type("blocks", parse_blocks)


# ---- the space --------------------------------------------------------------------------
class BlockSpace(SearchSpace):
    """A stage/block space built from a validated definition (see ``parse_blocks``)."""

    additive = True

    def __init__(self, definition: dict[str, Any], blocks: dict[str, Block]):
        self._definition = copy.deepcopy(definition)
        self.name = definition["name"]
        self.description = definition.get("description") or f"block space {self.name}"
        self.input_channels = definition["input"]["channels"]
        self.input_resolution = definition["input"]["resolution"]
        self.num_classes = definition["num_classes"]
        self.stem = definition["stem"]
        self.head = definition["head"]
        self.block_by_name = dict(blocks)
        self.stages = definition["stages"]
        layers: list[Layer] = []
        stage_of: list[int] = []
        c_in = self.stem["channels"]
        res = out_resolution(self.input_resolution, self.stem["stride"])
        self.stem_resolution = res
        for s, stage in enumerate(self.stages):
            for i in range(stage["layers"]):
                layer = Layer(c_in, stage["channels"], stage["stride"] if i == 0 else 1, res)
                layers.append(layer)
                stage_of.append(s)
                c_in, res = layer.c_out, layer.out_resolution
        self.LAYERS = tuple(layers)
        self.stage_of = tuple(stage_of)
        self.final_channels, self.final_resolution = c_in, res
        self.choices = tuple(tuple(self.stages[s]["choices"]) for s in stage_of)
        self._index = [{n: k for k, n in enumerate(ch)} for ch in self.choices]

    def definition(self) -> dict[str, Any]:
        return copy.deepcopy(self._definition)

    # ---- strings -----------------------------------------------------------------------
    def encode(self, arch: str) -> np.ndarray:
        names = arch.strip().split("-") if isinstance(arch, str) else []
        if len(names) != len(self.LAYERS):
            raise InvalidArchitecture(f"{self.name} needs {len(self.LAYERS)} blocks joined by '-', got {len(names)}")
        codes = np.empty(len(names), dtype=np.int64)
        for p, n in enumerate(names):
            k = self._index[p].get(n)
            if k is None:
                raise InvalidArchitecture(f"unknown block {n!r} at layer {p} (stage {self.stage_of[p]}); valid: "
                                          f"{', '.join(self.choices[p])}")
            codes[p] = k
        return codes

    def decode(self, codes: Sequence[int]) -> str:
        if len(codes) != len(self.LAYERS):
            raise InvalidArchitecture(f"{self.name} needs {len(self.LAYERS)} codes, got {len(codes)}")
        try:
            return "-".join(self.choices[p][int(c)] for p, c in enumerate(codes))
        except IndexError:
            raise InvalidArchitecture(f"a code is out of range for {self.name}: {list(map(int, codes))}") from None

    def canonical_hash(self, arch: str) -> str:
        """Of the normalised string: every string is its own network (moving an identity skip
        changes which layer's weights a trained network has, so strings are not merged)."""
        return hashlib.sha1(self.normalize(arch).encode()).hexdigest()[:16]

    # ---- signatures --------------------------------------------------------------------
    def position_signatures(self, position: int, choice: int) -> list[str]:
        layer = self.LAYERS[position]
        name = self.choices[position][choice]
        if layer.is_identity(self.block_by_name[name]):
            return []  # identity: nothing runs
        return [f"{name}:{layer.key()}"]

    def stem_signature(self) -> str:
        r = self.input_resolution
        return f"stem:{self.input_channels}x{r}x{r}->{self.stem['channels']}/s{self.stem['stride']}"

    def head_signature(self) -> str:
        r = self.final_resolution
        return f"head:{self.final_channels}x{r}x{r}->{self.head['channels']}"

    def base_signatures(self) -> list[str]:
        return [self.stem_signature(), self.head_signature()]

    # ---- static metrics ----------------------------------------------------------------
    def footprint(self, codes: np.ndarray):
        from search_spaces.blocks_metrics import footprint

        return footprint(self, codes)

    def largest_codes(self) -> np.ndarray:
        """Additive metrics are largest with the per-layer largest choice, the peak with the
        per-layer largest peak: one row per metric."""
        from search_spaces.blocks_metrics import tables

        costs, peaks, _ = tables(self, self.num_classes, self.input_channels)
        dims = np.asarray(self.dims)
        mask = np.arange(costs.per_choice.shape[2])[None, :] < dims[:, None]
        rows = [np.where(mask, costs.per_choice[k], -1).argmax(axis=1) for k in range(3)]
        rows.append(np.where(mask, peaks, -1).argmax(axis=1))
        return np.unique(np.stack(rows).astype(np.int64), axis=0)

    # ---- torch -------------------------------------------------------------------------
    def model_config(self) -> dict[str, Any]:
        return {"num_classes": self.num_classes, "in_channels": self.input_channels}

    def layout(self) -> dict[str, Any]:
        """What the torch network needs of the definition (plain data, for the standalone body)."""
        return {"stem": dict(self.stem), "head": dict(self.head),
                "blocks": {n: _block_dict(b) for n, b in self.block_by_name.items()},
                "layers": [[layer.c_in, layer.c_out, layer.stride] for layer in self.LAYERS]}

    def build_model(self, arch: str, *, num_classes: int | None = None, in_channels: int | None = None,
                    **options: Any):
        """The network as defined (``options`` such as nb201's ``width`` are ignored)."""
        from search_spaces import blocks_network

        return blocks_network.Network(self.choice_names(arch), num_classes=num_classes or self.num_classes,
                                      in_channels=in_channels or self.input_channels, layout=self.layout())

    def network_source(self, arch: str) -> str:
        """``blocks_network.py`` verbatim (it imports only torch) plus this space's layout."""
        return (SOURCE.read_text() + f"\n\n# --- the space's layout ({self.name}) ---\nLAYOUT = {self.layout()!r}\n")

    def build_supernet(self, *, num_classes: int | None = None, in_channels: int | None = None,
                       width_multiplier: float = 0.25, **options: Any):
        """Every layer a mixed op of its stage's blocks, on channels scaled by ``width_multiplier``
        (rounded to a multiple of every block's groups). Positions with fewer choices than the
        widest one list them in ``invalid`` (a bool (positions, choices) tensor) for the trainer."""
        from search_spaces.supernet import BlockSupernet

        return BlockSupernet(self, num_classes=num_classes or self.num_classes,
                             in_channels=in_channels or self.input_channels, width_multiplier=width_multiplier)

    def probe_modules(self, batch: int) -> dict[str, Probe]:
        from search_spaces import blocks_network as bn

        layout = self.layout()
        probes: dict[str, Probe] = {}
        for p, layer in enumerate(self.LAYERS):
            for c, name in enumerate(self.choices[p]):
                for sig in self.position_signatures(p, c):
                    if sig not in probes:
                        probes[sig] = Probe(bn.make_block(layout["blocks"][name], layer.c_in, layer.c_out, layer.stride),
                                            (batch, layer.c_in, layer.resolution, layer.resolution))
        probes[self.stem_signature()] = Probe(
            bn.conv_bn(self.input_channels, self.stem["channels"], self.stem["kernel"], self.stem["stride"],
                       act=self.stem["act"]), self.input_shape(batch))
        r = self.final_resolution
        probes[self.head_signature()] = Probe(bn.Head(self.final_channels, self.head["channels"], self.head["act"],
                                                      self.num_classes), (batch, self.final_channels, r, r))
        return probes

    def profile_plan(self, batch: int = 1) -> ProfilePlan:
        """One probe per signature: the block (or stem, or head with the classifier) on its input shape."""
        probes = self.probe_modules(batch)
        return ProfilePlan(probes, {sig: {sig: 1.0} for sig in probes})

    # ---- dashboard ---------------------------------------------------------------------
    diagram_caption = ("Stages left to right, one box per layer: the chosen block with its kernel (k), "
                       "expansion (e) and output channels; faint boxes are identity skips (nothing runs).")

    def diagram(self, arch: str) -> str:
        """A stage/block strip: one column per layer, grouped by stage, with kernel, expand, channels."""
        codes = self.encode(arch)
        box_w, gap, stage_gap = 64, 6, 18
        x = 10.0
        cells: list[str] = []
        for s, stage in enumerate(self.stages):
            first = x
            for p in [p for p, st in enumerate(self.stage_of) if st == s]:
                layer = self.LAYERS[p]
                name = self.choices[p][int(codes[p])]
                b = self.block_by_name[name]
                ident = layer.is_identity(b)
                detail = ("identity" if ident else "1x1 proj" if b.op == "skip" else
                          f"k{b.kernel} e{b.expand}" + (" se" if b.se else "") + (f" g{b.groups}" if b.groups > 1
                                                                                 else ""))
                fill = "#f4f4f4" if ident else {"mbconv": "#e8eefc", "conv": "#fcefe3", "skip": "#e6f4ea"}[b.op]
                style = ' stroke-dasharray="4 3" opacity="0.55"' if ident else ""
                cells.append(
                    f'<g class="layer" data-layer="{p}" data-op="{escape(name)}" data-kernel="{b.kernel}" '
                    f'data-expand="{b.expand}" data-channels="{layer.c_out}"><rect x="{x:.0f}" y="40" '
                    f'width="{box_w}" height="92" rx="5" fill="{fill}" stroke="#446"{style}/>'
                    f'<text x="{x + box_w / 2:.0f}" y="60" text-anchor="middle" font-size="10">{escape(name[:12])}</text>'
                    f'<text x="{x + box_w / 2:.0f}" y="82" text-anchor="middle" font-size="12" font-weight="bold">'
                    f'{escape(detail)}</text>'
                    f'<text x="{x + box_w / 2:.0f}" y="102" text-anchor="middle" font-size="11">{layer.c_out} ch</text>'
                    f'<text x="{x + box_w / 2:.0f}" y="120" text-anchor="middle" font-size="10">'
                    f'{layer.resolution}px s{layer.stride}</text></g>')
                x += box_w + gap
            cells.append(f'<g class="stage" data-stage="{s}"><text x="{first:.0f}" y="16" font-size="12" '
                         f'font-weight="bold">stage {s + 1}</text><text x="{first:.0f}" y="32" font-size="11">'
                         f'{stage["channels"]} ch, s{stage["stride"]}</text></g>')
            x += stage_gap - gap
        width = x + 10
        head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="arch-diagram" viewBox="0 0 {width:.0f} 150" '
                f'role="img" aria-labelledby="arch-title"><title id="arch-title">{escape(self.name)} '
                f'architecture {escape(arch)}</title>')
        return head + "".join(cells) + "</svg>"


def lcm_of_groups(space: BlockSpace) -> int:
    return math.lcm(*(b.groups for b in space.block_by_name.values()))
