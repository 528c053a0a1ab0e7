"""QR codes for the page: a small, fast encoder (byte mode, error correction M) and inline SVG.

The ``qrcode`` library spends ~10 ms a code choosing the mask and ~1.4 ms even
with a fixed mask, almost all of it in pure-Python bit buffers. A page is built
in about a millisecond, so this module encodes the one shape the site needs
(a short URL, byte mode, level M, versions 1-20) with table-driven Reed-Solomon
and numpy placement, and still scores all eight masks with the standard's four
penalty rules (on the finished symbol, format information included). Tests
check it module for module against ``qrcode`` for every mask, check the chosen
mask's penalty with ``qrcode``'s own scoring, and decode it with a real reader.
Longer data falls back to ``qrcode`` itself.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

# Level M, versions 1-20: (EC codewords per block, ((block count, data codewords per block), ...)).
_BLOCKS: dict[int, tuple[int, tuple[tuple[int, int], ...]]] = {
    1: (10, ((1, 16),)), 2: (16, ((1, 28),)), 3: (26, ((1, 44),)), 4: (18, ((2, 32),)),
    5: (24, ((2, 43),)), 6: (16, ((4, 27),)), 7: (18, ((4, 31),)), 8: (22, ((2, 38), (2, 39))),
    9: (22, ((3, 36), (2, 37))), 10: (26, ((4, 43), (1, 44))), 11: (30, ((1, 50), (4, 51))),
    12: (22, ((6, 36), (2, 37))), 13: (22, ((8, 37), (1, 38))), 14: (24, ((4, 40), (5, 41))),
    15: (24, ((5, 41), (5, 42))), 16: (28, ((7, 45), (3, 46))), 17: (28, ((10, 46), (1, 47))),
    18: (26, ((9, 43), (4, 44))), 19: (26, ((3, 44), (11, 45))), 20: (26, ((3, 41), (13, 42))),
}
_ALIGN: dict[int, tuple[int, ...]] = {
    1: (), 2: (6, 18), 3: (6, 22), 4: (6, 26), 5: (6, 30), 6: (6, 34), 7: (6, 22, 38), 8: (6, 24, 42),
    9: (6, 26, 46), 10: (6, 28, 50), 11: (6, 30, 54), 12: (6, 32, 58), 13: (6, 34, 62), 14: (6, 26, 46, 66),
    15: (6, 26, 48, 70), 16: (6, 26, 50, 74), 17: (6, 30, 54, 78), 18: (6, 30, 56, 82), 19: (6, 30, 58, 86),
    20: (6, 34, 62, 90),
}
_EC_LEVEL_M = 0b00
_PAD = (0xEC, 0x11)
QUIET = 4  # modules of light border the standard asks for


# --- Galois field and Reed-Solomon ------------------------------------------------------------

@lru_cache(maxsize=1)
def _gf() -> tuple[tuple[int, ...], tuple[int, ...]]:
    exp, log = [0] * 512, [0] * 256
    x = 1
    for i in range(255):
        exp[i], log[x] = x, i
        x <<= 1
        if x & 0x100:
            x ^= 0x11D
    for i in range(255, 512):
        exp[i] = exp[i - 255]
    return tuple(exp), tuple(log)


def _gf_mul(a: int, b: int) -> int:
    exp, log = _gf()
    return 0 if a == 0 or b == 0 else exp[log[a] + log[b]]


@lru_cache(maxsize=32)
def _rs_rows(degree: int) -> tuple[int, ...]:
    """For each lead byte, the generator times that byte, packed into one int (big-endian bytes)."""
    exp, _ = _gf()
    gen = [1]
    for i in range(degree):
        gen = [a ^ _gf_mul(b, exp[i]) for a, b in zip(gen + [0], [0] + gen, strict=True)]
    tail = gen[1:]  # the leading coefficient is 1
    return tuple(int.from_bytes(bytes(_gf_mul(f, g) for g in tail), "big") for f in range(256))


def _rs_remainder(data: bytes, degree: int) -> bytes:
    rows, shift, mask = _rs_rows(degree), 8 * (degree - 1), (1 << 8 * degree) - 1
    rem = 0
    for byte in data:
        lead = byte ^ (rem >> shift)
        rem = ((rem << 8) & mask) ^ rows[lead]
    return rem.to_bytes(degree, "big")


# --- data codewords -------------------------------------------------------------------------

def _capacity(version: int) -> int:
    return sum(count * size for count, size in _BLOCKS[version][1])


def _version_for(length: int) -> int | None:
    for version in _BLOCKS:
        count_bits = 8 if version < 10 else 16
        if 4 + count_bits + 8 * length <= 8 * _capacity(version):
            return version
    return None


def _codewords(data: bytes, version: int) -> bytes:
    """Mode, count, data, terminator and padding, split in blocks with their EC, interleaved."""
    count_bits = 8 if version < 10 else 16
    capacity = _capacity(version)
    bits = (0b0100 << count_bits | len(data)) << 8 * len(data) | int.from_bytes(data, "big")
    length = 4 + count_bits + 8 * len(data)
    pad = min(4, 8 * capacity - length)  # terminator
    bits, length = bits << pad, length + pad
    if length % 8:
        bits, length = bits << (8 - length % 8), length + 8 - length % 8
    body = bits.to_bytes(length // 8, "big")
    body += bytes(_PAD[i % 2] for i in range(capacity - len(body)))
    degree, groups = _BLOCKS[version]
    blocks, at = [], 0
    for count, size in groups:
        for _ in range(count):
            blocks.append(body[at:at + size])
            at += size
    ecs = [_rs_remainder(block, degree) for block in blocks]
    longest = max(len(block) for block in blocks)
    out = bytearray(block[i] for i in range(longest) for block in blocks if i < len(block))
    out += bytes(ec[i] for i in range(degree) for ec in ecs)
    return bytes(out)


# --- the symbol -----------------------------------------------------------------------------

def _bch(data: int, generator: int, bits: int) -> int:
    value = data << bits
    top = generator.bit_length()
    while value.bit_length() >= top:
        value ^= generator << (value.bit_length() - top)
    return data << bits | value


def _format_bits(mask: int) -> int:
    return _bch(_EC_LEVEL_M << 3 | mask, 0b10100110111, 10) ^ 0b101010000010010


def _finder(grid: np.ndarray, reserved: np.ndarray, row: int, col: int) -> None:
    n = grid.shape[0]
    for r in range(-1, 8):
        for c in range(-1, 8):
            y, x = row + r, col + c
            if 0 <= y < n and 0 <= x < n:
                ring = r in (0, 6) or c in (0, 6)
                grid[y, x] = (0 <= r <= 6 and 0 <= c <= 6 and ring) or (2 <= r <= 4 and 2 <= c <= 4)
                reserved[y, x] = True


@lru_cache(maxsize=20)
def _function_patterns(version: int) -> tuple[np.ndarray, np.ndarray]:
    """Finder, timing, alignment and dark modules, and which modules data may not use."""
    n = 4 * version + 17
    grid = np.zeros((n, n), bool)
    reserved = np.zeros((n, n), bool)
    for row, col in ((0, 0), (n - 7, 0), (0, n - 7)):
        _finder(grid, reserved, row, col)
    for row in _ALIGN[version]:
        for col in _ALIGN[version]:
            if reserved[row, col]:
                continue
            for r in range(-2, 3):
                for c in range(-2, 3):
                    grid[row + r, col + c] = max(abs(r), abs(c)) != 1
                    reserved[row + r, col + c] = True
    for i in range(8, n - 8):
        if not reserved[6, i]:
            grid[6, i] = grid[i, 6] = i % 2 == 0
            reserved[6, i] = reserved[i, 6] = True
    reserved[8, :9] = reserved[:9, 8] = reserved[8, n - 8:] = reserved[n - 8:, 8] = True  # format info
    grid[n - 8, 8] = True
    if version >= 7:
        bits = _bch(version, 0b1111100100101, 12)
        for i in range(18):
            grid[i // 3, n - 11 + i % 3] = grid[n - 11 + i % 3, i // 3] = bool(bits >> i & 1)
        reserved[:6, n - 11:n - 8] = reserved[n - 11:n - 8, :6] = True
    grid.flags.writeable = reserved.flags.writeable = False
    return grid, reserved


@lru_cache(maxsize=20)
def _placement(version: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the data modules in the order the codeword bits fill them."""
    _, reserved = _function_patterns(version)
    n = reserved.shape[0]
    rows, cols = [], []
    upward = True
    col = n - 1
    while col > 0:
        if col == 6:
            col -= 1
        for row in (range(n - 1, -1, -1) if upward else range(n)):
            for c in (col, col - 1):
                if not reserved[row, c]:
                    rows.append(row)
                    cols.append(c)
        upward = not upward
        col -= 2
    return np.array(rows, np.intp), np.array(cols, np.intp)


_MASKS = (
    lambda i, j: (i + j) % 2 == 0,
    lambda i, j: i % 2 == 0,
    lambda i, j: j % 3 == 0,
    lambda i, j: (i + j) % 3 == 0,
    lambda i, j: (i // 2 + j // 3) % 2 == 0,
    lambda i, j: (i * j) % 2 + (i * j) % 3 == 0,
    lambda i, j: ((i * j) % 2 + (i * j) % 3) % 2 == 0,
    lambda i, j: ((i * j) % 3 + (i + j) % 2) % 2 == 0,
)


@lru_cache(maxsize=20)
def _candidates(version: int) -> tuple[np.ndarray, np.ndarray]:
    """Per mask: the function patterns with that mask's format info, and the mask over data modules."""
    grid, _ = _function_patterns(version)
    rows, cols = _placement(version)
    n = grid.shape[0]
    bases = np.repeat(grid[None], 8, axis=0)
    flips = np.zeros((8, rows.size), bool)
    for mask, rule in enumerate(_MASKS):
        flips[mask] = rule(rows, cols)
        bits = _format_bits(mask)
        for i in range(15):
            dark = bool(bits >> i & 1)
            bases[mask, i if i < 6 else (i + 1 if i < 8 else n - 15 + i), 8] = dark
            bases[mask, 8, n - i - 1 if i < 8 else (7 if i == 8 else 14 - i)] = dark
    bases.flags.writeable = flips.flags.writeable = False
    return bases, flips


def _runs_penalty(lines: np.ndarray) -> np.ndarray:
    """N1 for a stack (k, n, n): a run of L >= 5 modules of one colour costs L - 2.

    A run of L holds L - 4 windows of five equal modules, so the cost is the number
    of such windows plus two for each run (a window whose predecessor differs).
    """
    eq = lines[:, :, 1:] == lines[:, :, :-1]
    five = eq[:, :, :-3] & eq[:, :, 1:-2] & eq[:, :, 2:-1] & eq[:, :, 3:]
    first = five.copy()
    first[:, :, 1:] &= ~eq[:, :, :-4]
    return five.sum(axis=(1, 2)) + 2 * first.sum(axis=(1, 2))


def _finder_penalty(lines: np.ndarray) -> np.ndarray:
    """N3 for a stack (k, n, n): 40 for each 1:1:3:1:1 pattern with four light modules on one side."""
    n = lines.shape[2]
    d, light = lines, ~lines
    core = d[:, :, :n - 6] & light[:, :, 1:n - 5] & d[:, :, 2:n - 4] & d[:, :, 3:n - 3] & d[:, :, 4:n - 2] \
        & light[:, :, 5:n - 1] & d[:, :, 6:]
    four = light[:, :, :n - 3] & light[:, :, 1:n - 2] & light[:, :, 2:n - 1] & light[:, :, 3:]
    after = core[:, :, :n - 10] & four[:, :, 7:]  # 1011101 then 0000
    before = four[:, :, :n - 10] & core[:, :, 4:]  # 0000 then 1011101
    return 40 * (after.sum(axis=(1, 2)) + before.sum(axis=(1, 2)))


def _penalties(symbols: np.ndarray) -> np.ndarray:
    """The standard's four penalty scores, summed, for a stack of candidate symbols (k, n, n)."""
    n = symbols.shape[1]
    columns = symbols.transpose(0, 2, 1)
    score = _runs_penalty(symbols) + _runs_penalty(columns) + _finder_penalty(symbols) + _finder_penalty(columns)
    top = symbols[:, :-1, :-1]
    same = (top == symbols[:, 1:, :-1]) & (top == symbols[:, :-1, 1:]) & (top == symbols[:, 1:, 1:])
    score += 3 * same.sum(axis=(1, 2))  # N2: 2x2 blocks of one colour
    dark = symbols.sum(axis=(1, 2)) * 100 // (n * n)
    score += 10 * (np.abs(dark - 50) // 5)  # N4: far from half dark
    return score


def qr_matrix(data: str, *, mask: int | None = None) -> np.ndarray:
    """The QR symbol for ``data`` (UTF-8, byte mode, level M) as a bool array, True is dark, no border.

    ``mask`` fixes the mask pattern (0-7); by default the one with the lowest penalty is chosen.
    """
    raw = data.encode("utf-8")
    version = _version_for(len(raw))
    if version is None:
        return _fallback(raw, mask)
    rows, cols = _placement(version)
    bits = np.unpackbits(np.frombuffer(_codewords(raw, version), np.uint8))
    stream = np.zeros(rows.size, bool)
    stream[:bits.size] = bits  # remainder bits stay light
    bases, flips = _candidates(version)
    chosen = range(8) if mask is None else (mask,)
    symbols = bases[list(chosen)].copy()
    symbols[:, rows, cols] = stream[None, :] ^ flips[list(chosen)]
    best = int(np.argmin(_penalties(symbols))) if mask is None else 0
    return symbols[best]


def _fallback(raw: bytes, mask: int | None) -> np.ndarray:
    import qrcode
    from qrcode.util import MODE_8BIT_BYTE, QRData

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0,
                         mask_pattern=0 if mask is None else mask)
    code.add_data(QRData(raw, mode=MODE_8BIT_BYTE))
    code.make(fit=True)
    return np.array(code.get_matrix(), bool)


@lru_cache(maxsize=1)
def _numbers() -> tuple[str, ...]:
    return tuple(str(i) for i in range(4 * 20 + 17 + 2 * QUIET + 1))


def qr_path(matrix: np.ndarray) -> str:
    """An SVG path drawing the dark modules as horizontal runs, offset by the quiet zone."""
    n = matrix.shape[0]
    padded = np.zeros((n, n + 2), np.int8)
    padded[:, 1:-1] = matrix
    edges = np.diff(padded, axis=1)
    rows, starts = np.nonzero(edges == 1)
    _, ends = np.nonzero(edges == -1)
    if n + 2 * QUIET >= len(_numbers()):  # a fallback symbol larger than version 20
        return "".join(f"M{c + QUIET} {r + QUIET}h{e - c}v1h-{e - c}z"
                       for r, c, e in zip(rows.tolist(), starts.tolist(), ends.tolist(), strict=True))
    text = _numbers()
    return "".join([f"M{text[c]} {text[r]}h{text[w]}v1h-{text[w]}z" for c, r, w in
                    zip((starts + QUIET).tolist(), (rows + QUIET).tolist(), (ends - starts).tolist(), strict=True)])
