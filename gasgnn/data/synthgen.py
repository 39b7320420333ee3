"""Procedural street-scene renderer behind :class:`~gasgnn.data.SyntheticStreets`.

The scene is a one-point-perspective street: a horizon row ``hz`` and a vanishing column ``vx``.
A ground point ``u = y - hz`` pixels below the horizon is at depth ``D = (H - hz) / u`` and one
*camera unit* (the camera height) spans ``u`` pixels there, so every object is sized in camera
units and shrinks consistently towards the vanishing point. Layers are painted back to front:
sky (gradient + clouds), a hazy far skyline, the two street sides (building façades with
perspective-correct window grids, or tree rows), the ground (road, sidewalks with a paving grid,
grass), cast shadows, lane markings, then objects sorted by depth (trees, poles, cars,
pedestrians). Finally illumination, white balance, blur and sensor noise are applied.

Everything is vectorised numpy; objects are drawn inside their bounding boxes only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["SYNTH_CLASSES", "SYNTH_PALETTE", "render_street", "value_noise"]

#: Class names of the synthetic street scenes, in label order.
SYNTH_CLASSES: tuple[str, ...] = (
    "sky",
    "building",
    "road",
    "sidewalk",
    "vegetation",
    "pole",
    "lane marking",
    "car",
    "pedestrian",
)
#: Colours of the synthetic classes (Cityscapes-like).
SYNTH_PALETTE: tuple[tuple[int, int, int], ...] = (
    (70, 130, 180),
    (70, 70, 70),
    (128, 64, 128),
    (244, 35, 232),
    (107, 142, 35),
    (153, 153, 153),
    (255, 255, 255),
    (0, 0, 142),
    (220, 20, 60),
)
SKY, BUILDING, ROAD, SIDEWALK, VEGETATION, POLE, LANE, CAR, PEDESTRIAN = range(9)

F32 = np.float32
_FACADE_COLOURS = np.array(
    [[0.55, 0.55, 0.55], [0.72, 0.66, 0.55], [0.55, 0.30, 0.24], [0.85, 0.84, 0.80], [0.30, 0.30, 0.32],
     [0.50, 0.58, 0.52], [0.60, 0.64, 0.72], [0.78, 0.70, 0.50], [0.42, 0.45, 0.40]], F32)  # fmt: skip
_CAR_COLOURS = np.array(
    [[0.85, 0.85, 0.86], [0.08, 0.08, 0.09], [0.55, 0.56, 0.58], [0.60, 0.08, 0.08], [0.10, 0.18, 0.45],
     [0.22, 0.35, 0.22], [0.40, 0.40, 0.42], [0.75, 0.70, 0.55], [0.30, 0.30, 0.33]], F32)  # fmt: skip
_CLOTHES = np.array(
    [[0.10, 0.10, 0.12], [0.20, 0.25, 0.45], [0.55, 0.12, 0.12], [0.70, 0.70, 0.68], [0.35, 0.30, 0.25],
     [0.15, 0.35, 0.20], [0.45, 0.45, 0.47], [0.80, 0.60, 0.20]], F32)  # fmt: skip
_GREENS = np.array(
    [[0.22, 0.36, 0.14], [0.30, 0.45, 0.18], [0.16, 0.26, 0.12], [0.40, 0.42, 0.20], [0.45, 0.35, 0.15]], F32
)
_SKIN = np.array([[0.90, 0.72, 0.60], [0.70, 0.50, 0.38], [0.45, 0.30, 0.22]], F32)


def value_noise(rng: np.random.Generator, h: int, w: int, cell: float, octaves: int = 1) -> np.ndarray:
    """Smooth fractal value noise.

    Args:
        rng (numpy.random.Generator): Random source.
        h (int): Height in pixels.
        w (int): Width in pixels.
        cell (float): Lattice spacing of the first octave, in pixels.
        octaves (int, optional): Octaves, each at half the cell size and half the amplitude.

    Returns:
        numpy.ndarray: ``float32 [h, w]``, roughly in ``[-1, 1]``.
    """
    out = np.zeros((h, w), F32)
    amp, total = 1.0, 0.0
    for _ in range(octaves):
        c = max(float(cell), 1.0)
        gh, gw = int(h / c) + 3, int(w / c) + 3
        grid = rng.random((gh, gw), dtype=F32) * 2 - 1
        ys = np.arange(h, dtype=F32) / c + rng.random(dtype=F32)
        xs = np.arange(w, dtype=F32) / c + rng.random(dtype=F32)
        iy, ix = ys.astype(np.int64), xs.astype(np.int64)
        fy, fx = ys - iy, xs - ix
        fy, fx = fy * fy * (3 - 2 * fy), fx * fx * (3 - 2 * fx)
        rows = grid[:, ix] * (1 - fx) + grid[:, ix + 1] * fx
        out += amp * (rows[iy] * (1 - fy)[:, None] + rows[iy + 1] * fy[:, None])
        total += amp
        amp *= 0.5
        cell /= 2
    return out / F32(total)


def _jitter(rng: np.random.Generator, colour: np.ndarray, amount: float) -> np.ndarray:
    return np.clip(colour + rng.uniform(-amount, amount, 3).astype(F32), 0, 1)


class _Canvas:
    """Image, mask and per-image noise fields shared by the painters."""

    def __init__(self, rng: np.random.Generator, h: int, w: int) -> None:
        self.rng, self.h, self.w = rng, h, w
        self.img = np.zeros((h, w, 3), F32)
        self.mask = np.zeros((h, w), np.uint8)
        s = h / 360.0
        self.fine = value_noise(rng, h, w, max(1.5, 2.5 * s), 2)
        self.mid = value_noise(rng, h, w, max(3.0, 9.0 * s), 2)
        self.low = value_noise(rng, h, w, h / 3.0, 3)
        # per-image vegetation colour: a green, partly desaturated towards grey (season, light)
        green = _GREENS[rng.integers(0, len(_GREENS))]
        grey = np.full(3, green.mean(), F32)
        mix = rng.uniform(0.0, 0.55)
        self.veg = (green * (1 - mix) + grey * mix) * rng.uniform(0.8, 1.2)

    def paint(
        self, region: np.ndarray, cls: int, colour: np.ndarray, sl: tuple = (slice(None), slice(None))
    ) -> None:
        """Writes ``cls`` and ``colour`` (``[3]`` or ``[n, 3]`` for the region's pixels) in the
        window ``sl``."""
        self.mask[sl][region] = cls
        self.img[sl][region] = colour


def _box(c: _Canvas, y0: float, y1: float, x0: float, x1: float):
    """Clipped integer window and pixel-centre coordinates, or None if empty."""
    r0, r1 = max(0, int(np.floor(y0))), min(c.h, int(np.ceil(y1)))
    q0, q1 = max(0, int(np.floor(x0))), min(c.w, int(np.ceil(x1)))
    if r1 <= r0 or q1 <= q0:
        return None
    ly = np.arange(r0, r1, dtype=F32)[:, None] + 0.5
    lx = np.arange(q0, q1, dtype=F32)[None, :] + 0.5
    return (slice(r0, r1), slice(q0, q1)), ly, lx


def _sides(c: _Canvas, hz: float, vx: float, A: np.ndarray, B: np.ndarray, sky_h: np.ndarray) -> list:
    """Façades / tree rows on both street sides (above the sidewalk outer line)."""
    rng, H, W = c.rng, c.h, c.w
    yy = np.arange(H, dtype=F32)[:, None] + 0.5
    xx = np.arange(W, dtype=F32)[None, :] + 0.5
    kinds = []
    for si, side in enumerate((-1.0, 1.0)):
        lat = side * (xx - vx)  # [1, W] lateral pixels from the vanishing column
        u = np.maximum(lat, 0.25) / (A[si] + B[si])  # camera unit at the façade foot  [1, W]
        depth = (H - hz) / u  # [1, W]
        kind = "open" if rng.random() < 0.18 else "street"
        kinds.append(kind)
        if kind == "open":  # park / verge: grass down to the sidewalk, sky above
            region = (lat > 0) & (yy >= hz) & (yy < hz + u)
            g = c.veg * np.array([1.1, 1.2, 1.1], F32) * rng.uniform(0.8, 1.15)
            tex = 1 + 0.22 * c.fine[region] + 0.12 * c.mid[region]
            c.paint(region, VEGETATION, np.clip(g * tex[:, None], 0, 1))
            continue
        d_edge = float(depth[0, 0] if side < 0 else depth[0, -1])
        n_max = 200
        bounds = d_edge + np.cumsum(rng.uniform(2.0, 8.0, n_max)).astype(F32)
        seg = np.minimum(np.searchsorted(bounds, depth[0]), n_max - 1)  # [W]
        heights = rng.uniform(3.0, 16.0, n_max).astype(F32)  # building height, camera units
        is_tree = rng.random(n_max) < 0.2
        base = _FACADE_COLOURS[rng.integers(0, len(_FACADE_COLOURS), n_max)]
        base = np.clip(base * rng.uniform(0.75, 1.2, (n_max, 1)) + rng.uniform(-0.06, 0.06, (n_max, 3)), 0, 1)
        win_p = rng.uniform(0.6, 1.4, n_max).astype(F32)
        floor_h = rng.uniform(2.0, 2.8, n_max).astype(F32)
        glass_win = rng.random(n_max) < 0.3
        haze_d = rng.uniform(40, 140)
        # rows above the façade top or below its foot can be skipped per column
        top_h = heights[seg] * np.where(is_tree[seg], 0.35, 1.0)  # [W]
        v_grid = (hz - yy) / u + 1.0  # height above ground in camera units  [H, W]
        region = (lat > 0) & (v_grid >= 0) & (v_grid < top_h + np.where(is_tree[seg], 0.9 * c.mid, 0.0))
        ys, xs = np.nonzero(region)
        sg, v, d = seg[xs], v_grid[ys, xs], depth[0, xs]
        fine, mid, low = c.fine[ys, xs], c.mid[ys, xs], c.low[ys, xs]
        # façade colour with a perspective-correct window grid
        fx = np.mod(d / win_p[sg] + sg * 0.37, 1.0)
        fy = np.mod(v / floor_h[sg], 1.0)
        window = (
            (fx > 0.25) & (fx < 0.75) & (fy > 0.3) & (fy < 0.78) & (v > floor_h[sg]) & (v < top_h[xs] - 0.6)
        )
        col = base[sg] * (1 + 0.05 * fine + 0.05 * low)[:, None]
        wc = np.where(
            glass_win[sg][:, None], np.array([0.45, 0.58, 0.70], F32), np.array([0.12, 0.13, 0.16], F32)
        )
        col = np.where(window[:, None], wc * (1 + 0.1 * mid)[:, None], col)
        col = np.where((v < 1.0)[:, None], col * 0.8, col)  # darker ground floor
        tree_px = is_tree[sg]
        veg = c.veg * (1 + 0.3 * fine + 0.2 * mid)[:, None]
        col = np.where(tree_px[:, None], veg, col)
        haze = (1 - np.exp(-d / haze_d))[:, None] * 0.8
        c.img[ys, xs] = col * (1 - haze) + sky_h.reshape(1, 3) * haze
        c.mask[ys, xs] = np.where(tree_px, VEGETATION, BUILDING)
    return kinds


def _ground(c: _Canvas, hz: float, vx: float, A: np.ndarray, B: np.ndarray, sky_h: np.ndarray) -> None:
    rng, H, W = c.rng, c.h, c.w
    yy = np.arange(H, dtype=F32)[:, None] + 0.5
    xx = np.arange(W, dtype=F32)[None, :] + 0.5
    u_row = np.maximum(yy - hz, 1e-3)  # camera unit in pixels per row  [H, 1]
    X_grid = (xx - vx) / u_row  # lateral position in camera units  [H, W]
    ground = (yy > hz) & (X_grid >= -(A[0] + B[0])) & (X_grid <= A[1] + B[1])
    ys, xs = np.nonzero(ground)
    X, u = X_grid[ys, xs], u_row[ys, 0]
    road = (X >= -A[0]) & (X <= A[1])
    depth = (H - hz) / u
    fine, low = c.fine[ys, xs], c.low[ys, xs]
    g = rng.uniform(0.22, 0.48)
    road_col = np.array([g, g, g * rng.uniform(1.0, 1.08)], F32)
    tone = 1 + 0.07 * fine + 0.08 * low
    col_r = road_col * tone[:, None]
    gs = np.clip(g + rng.uniform(-0.08, 0.22), 0.15, 0.8)
    walk_col = np.array([gs, gs, gs], F32)
    if rng.random() < 0.35:
        walk_col = walk_col * np.array([1.08, 0.95, 0.85], F32)
    period_x, period_z = rng.uniform(0.3, 0.7), rng.uniform(0.3, 0.7)
    grid = (np.mod(X / period_x, 1.0) < 0.08) | (np.mod(depth / period_z, 1.0) < 0.08)
    col_w = walk_col * (tone - 0.12 * grid)[:, None]
    curb = (np.abs(X + A[0]) < 0.12) | (np.abs(X - A[1]) < 0.12)
    col_w = np.where(curb[:, None], np.clip(walk_col + 0.12, 0, 1), col_w)
    col = np.where(road[:, None], col_r, col_w)
    haze = (1 - np.exp(-depth / rng.uniform(40, 140)))[:, None] * 0.8
    col = col * (1 - haze) + sky_h.reshape(1, 3) * haze
    # a cast shadow from one side of the street across part of the ground
    if rng.random() < 0.5:
        side = rng.choice([-1.0, 1.0])
        edge = rng.uniform(-A[0], A[1])
        shade = side * (X - edge) > 0
        col = np.where(shade[:, None], col * np.array([0.55, 0.58, 0.68], F32), col)
    c.mask[ys, xs] = np.where(road, ROAD, SIDEWALK)
    c.img[ys, xs] = col
    # lane markings: a dashed or solid centre line and optional edge lines, worn
    lines = [(rng.uniform(-0.3, 0.3) * min(A), rng.random() < 0.7)]
    if rng.random() < 0.5:
        lines += [(-A[0] + 0.25, False), (A[1] - 0.25, False)]
    white = np.array([0.92, 0.92, 0.90], F32) if rng.random() < 0.75 else np.array([0.9, 0.75, 0.2], F32)
    lw = rng.uniform(0.08, 0.14)
    phase, freq = rng.random(), rng.uniform(0.25, 0.5)
    px = xs.astype(F32) + 0.5
    for x_c, dashed in lines:
        half = np.maximum(lw * u / 2, 0.5)
        on = road & (np.abs(px - (vx + x_c * u)) < half) & (lw * u > 0.6)
        if dashed:
            on &= np.mod(depth * freq + phase, 1.0) < 0.5
        wear = rng.uniform(0.55, 1.0)
        paint = white * wear + col_r[on] * (1 - wear) + (0.08 * fine[on])[:, None]
        c.mask[ys[on], xs[on]] = LANE
        c.img[ys[on], xs[on]] = paint


def _tree(c: _Canvas, hz: float, x: float, yb: float, sky_h: np.ndarray) -> None:
    u = yb - hz
    R = c.rng.uniform(0.9, 1.8) * u
    trunk_h = c.rng.uniform(1.2, 2.0) * u
    cy = yb - trunk_h - 0.7 * R
    tw = max(1.0, 0.14 * u)
    b = _box(c, yb - trunk_h - 0.1 * u, yb, x - tw / 2, x + tw / 2)
    if b is not None:
        sl, ly, lx = b
        reg = np.ones((ly.shape[0], lx.shape[1]), bool)
        c.paint(reg, VEGETATION, np.array([0.28, 0.20, 0.13], F32) * (1 + 0.2 * c.fine[sl][reg])[:, None], sl)
    b = _box(c, cy - 1.35 * R, cy + 1.35 * R, x - 1.35 * R, x + 1.35 * R)
    if b is None:
        return
    sl, ly, lx = b
    dist = np.sqrt((ly - cy) ** 2 + (lx - x) ** 2) / R
    reg = dist < 1 + 0.3 * c.mid[sl]
    hue = c.veg if c.rng.random() < 0.8 else _GREENS[c.rng.integers(0, len(_GREENS))]
    col = (
        _jitter(c.rng, hue, 0.05)
        * (1 + 0.35 * c.fine[sl] + 0.25 * c.mid[sl] - 0.25 * (dist > 0.7))[..., None]
    )
    haze = (1 - np.exp(-(c.h - hz) / u / 80.0)) * 0.8
    c.paint(reg, VEGETATION, (col * (1 - haze) + sky_h * haze)[reg], sl)


def _pole(c: _Canvas, hz: float, x: float, yb: float, side: float) -> None:
    u = yb - hz
    w = max(1.0, c.rng.uniform(0.07, 0.12) * u)
    ph = c.rng.uniform(3.0, 5.5) * u
    b = _box(c, yb - ph, yb, x - w / 2, x + w / 2)
    if b is None:
        return
    sl, ly, lx = b
    base = _jitter(c.rng, np.array([0.45, 0.46, 0.47], F32) * c.rng.uniform(0.4, 1.4), 0.05)
    shade = 1 + 0.25 * np.clip((lx - x) / w, -0.5, 0.5)
    col = base * np.broadcast_to(shade, (ly.shape[0], lx.shape[1]))[..., None]
    c.paint(np.ones(col.shape[:2], bool), POLE, col.reshape(-1, 3), sl)
    if c.rng.random() < 0.5:  # street-light arm towards the road
        arm = c.rng.uniform(0.6, 1.2) * u
        x0, x1 = (x, x - side * arm) if side < 0 else (x - side * arm, x)
        b = _box(c, yb - ph, yb - ph + w, min(x0, x1), max(x0, x1))
        if b is not None:
            sl, ly, lx = b
            c.paint(np.ones((ly.shape[0], lx.shape[1]), bool), POLE, base, sl)


def _car(c: _Canvas, hz: float, x: float, yb: float) -> None:
    rng, u = c.rng, yb - hz
    w, h = rng.uniform(1.35, 1.6) * u, rng.uniform(1.05, 1.35) * u
    b = _box(c, yb - h, yb, x - w / 2, x + w / 2)
    if b is None:
        return
    sl, ly, lx = b
    nx = (lx - x) / (w / 2)
    body_c, body_h = yb - 0.36 * h, 0.25 * h
    body = np.abs(nx) ** 4 + np.abs((ly - body_c) / body_h) ** 4 <= 1
    cab_c, cab_h = yb - 0.75 * h, 0.26 * h
    cab = np.abs(nx / 0.8) ** 4 + np.abs((ly - cab_c) / cab_h) ** 4 <= 1
    wheels = (ly > yb - 0.2 * h) & (np.abs(nx) > 0.55) & (np.abs(nx) < 0.92)
    reg = body | cab | wheels
    paint = _jitter(rng, _CAR_COLOURS[rng.integers(0, len(_CAR_COLOURS))], 0.05)
    shine = 1 + 0.15 * (1 - np.abs(nx)) - 0.1 * ((ly - (yb - h)) / h)
    col = paint * shine[..., None] * (1 + 0.03 * c.fine[sl])[..., None]
    glass = np.abs(nx / 0.68) ** 4 + np.abs((ly - cab_c) / (0.7 * cab_h)) ** 4 <= 1
    col = np.where(
        glass[..., None], np.array([0.10, 0.12, 0.16], F32) * (1 + 0.3 * c.low[sl])[..., None], col
    )
    col = np.where((wheels & ~body)[..., None], np.array([0.05, 0.05, 0.05], F32), col)
    lights = (np.abs(np.abs(nx) - 0.8) < 0.12) & (np.abs(ly - (yb - 0.45 * h)) < 0.05 * h)
    col = np.where(lights[..., None], np.array([0.8, 0.1, 0.08], F32), col)
    c.paint(reg, CAR, col[reg], sl)


def _pedestrian(c: _Canvas, hz: float, x: float, yb: float) -> None:
    rng, u = c.rng, yb - hz
    hp = rng.uniform(1.2, 1.5) * u
    b = _box(c, yb - hp, yb, x - 0.25 * hp, x + 0.25 * hp)
    if b is None:
        return
    sl, ly, lx = b
    dx, dy = lx - x, ly - yb
    head = dx**2 + (dy + 0.91 * hp) ** 2 < (0.075 * hp) ** 2
    torso = (dx / (0.14 * hp)) ** 2 + ((dy + 0.63 * hp) / (0.2 * hp)) ** 2 < 1
    stride = rng.uniform(0.0, 0.08) * hp
    lw = max(0.5, 0.045 * hp)
    legs = (dy > -0.48 * hp) & ((np.abs(dx - stride) < lw) | (np.abs(dx + stride) < lw))
    arms = (dy > -0.78 * hp) & (dy < -0.42 * hp) & (np.abs(np.abs(dx) - 0.15 * hp) < 0.6 * lw)
    reg = head | torso | legs | arms
    top = _jitter(rng, _CLOTHES[rng.integers(0, len(_CLOTHES))], 0.06)
    pants = _jitter(rng, _CLOTHES[rng.integers(0, len(_CLOTHES))], 0.06)
    col = np.where((dy > -0.45 * hp)[..., None], pants, top) * (1 + 0.06 * c.fine[sl])[..., None]
    col = np.where(head[..., None], _SKIN[rng.integers(0, len(_SKIN))], col)
    c.paint(reg, PEDESTRIAN, col[reg], sl)


def render_street(rng: np.random.Generator, height: int, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Renders one random street scene.

    Args:
        rng (numpy.random.Generator): Random source (the scene is a pure function of its state).
        height (int): Image height in pixels (at least 16).
        width (int): Image width in pixels (at least 16).

    Returns:
        (numpy.ndarray, numpy.ndarray): ``uint8`` image ``[height, width, 3]`` and ``uint8`` mask
        ``[height, width]`` with values in ``0 .. len(SYNTH_CLASSES) - 1``.
    """
    if height < 16 or width < 16:
        raise ValueError(f"synthetic images need at least 16x16 pixels, got {height}x{width}")
    c = _Canvas(rng, height, width)
    H, W = height, width
    hz = H * rng.uniform(0.36, 0.5)
    vx = W * rng.uniform(0.3, 0.7)
    A = rng.uniform(1.0, 2.4, 2).astype(F32)  # road half-widths (camera units), left/right
    B = rng.uniform(0.8, 2.2, 2).astype(F32)  # sidewalk widths
    # sky: gradient, optional overcast, clouds
    yy = np.arange(H, dtype=F32)[:, None, None] + 0.5
    if rng.random() < 0.35:
        top = np.full(3, rng.uniform(0.55, 0.8), F32) * np.array([0.97, 0.99, 1.03], F32)
        bottom = np.clip(top + rng.uniform(0.03, 0.1), 0, 1)
    else:
        top = np.array([rng.uniform(0.2, 0.4), rng.uniform(0.4, 0.6), rng.uniform(0.7, 0.95)], F32)
        bottom = np.clip(top * 0.4 + np.array([0.5, 0.55, 0.6], F32), 0, 1)
    gy = np.clip(yy / max(hz, 1.0), 0, 1)
    sky = top * (1 - gy) + bottom * gy
    clouds = np.clip(c.low + rng.uniform(-0.3, 0.3), 0, 1)[..., None] * rng.uniform(0.0, 0.8)
    c.img[:] = sky * (1 - clouds) + np.array([0.93, 0.93, 0.95], F32) * clouds
    sky_h = bottom.reshape(1, 1, 3)
    # far skyline around the vanishing point
    n = int(rng.integers(3, 10))
    edges = np.sort(rng.uniform(vx - 0.3 * W, vx + 0.3 * W, n + 1))
    for i in range(n):
        b = _box(c, hz - rng.uniform(0.02, 0.12) * H, hz + 1, edges[i], edges[i + 1])
        if b is not None:
            sl, ly, lx = b
            reg = np.ones((ly.shape[0], lx.shape[1]), bool)
            col = _FACADE_COLOURS[rng.integers(0, len(_FACADE_COLOURS))] * 0.35 + sky_h[0, 0] * 0.65
            c.paint(reg, BUILDING, col, sl)
    kinds = _sides(c, hz, vx, A, B, sky_h)
    _ground(c, hz, vx, A, B, sky_h)
    # objects, sorted far to near
    objs: list[tuple[float, int, float, float]] = []  # (base row, kind, x, side)
    span = H - hz
    for si, side in enumerate((-1.0, 1.0)):
        dense = kinds[si] == "open"
        if dense or rng.random() < 0.55:
            d0, step = rng.uniform(1.2, 4.0), rng.uniform(3.0, 9.0) * (0.6 if dense else 1.0)
            for d in np.arange(d0, span / 6.0, step):
                Xs = side * (A[si] + B[si] * rng.uniform(0.55, 0.9))
                objs.append((hz + span / d, 0, vx + Xs * span / d, side))
        if rng.random() < 0.7:
            d0, step = rng.uniform(1.0, 3.0), rng.uniform(4.0, 12.0)
            for d in np.arange(d0, span / 8.0, step):
                Xs = side * (A[si] + B[si] * rng.uniform(0.1, 0.3))
                objs.append((hz + span / d, 1, vx + Xs * span / d, side))
    for _ in range(int(rng.integers(0, 7))):
        d = float(np.exp(rng.uniform(np.log(1.3), np.log(25.0))))
        parked = rng.random() < 0.3
        si = int(rng.integers(0, 2))
        X = (1 if si else -1) * (A[si] - 0.8) if parked else rng.uniform(-A[0] + 0.8, A[1] - 0.8)
        objs.append((hz + span / d, 2, vx + X * span / d, 0.0))
    for _ in range(int(rng.integers(0, 6))):
        d = float(np.exp(rng.uniform(np.log(1.5), np.log(30.0))))
        si = int(rng.integers(0, 2))
        on_road = rng.random() < 0.1
        X = (
            rng.uniform(-A[0], A[1])
            if on_road
            else (1 if si else -1) * (A[si] + B[si] * rng.uniform(0.2, 0.8))
        )
        objs.append((hz + span / d, 3, vx + X * span / d, 0.0))
    objs.sort(key=lambda o: o[0])
    for yb, kind, x, side in objs:
        if yb - hz < 2.0:
            continue
        if kind == 0:
            _tree(c, hz, x, yb, sky_h)
        elif kind == 1:
            _pole(c, hz, x, yb, side)
        elif kind == 2:
            _car(c, hz, x, yb)
        else:
            _pedestrian(c, hz, x, yb)
    # camera: illumination, white balance, exposure, blur, sensor noise
    img = c.img * (1 + 0.12 * c.low)[..., None]
    img *= (rng.uniform(0.88, 1.12, 3) * rng.uniform(0.8, 1.15)).astype(F32)
    if rng.random() < 0.7:
        p = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
        img = (p[:-2] + 2 * p[1:-1] + p[2:]) / 4
        img = (img[:, :-2] + 2 * img[:, 1:-1] + img[:, 2:]) / 4
    img += rng.normal(0, rng.uniform(0.01, 0.035), img.shape).astype(F32)
    out = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    return out, c.mask
